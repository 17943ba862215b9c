"""The training regimes the claims are tested in, each fixed before its results were seen (PAPER.md 5 lists the
claims; experiments/README.md the verdicts).

A regime is the spec keys experiments/variants.py reads: training images, the held-out validation split, epochs,
the learning-rate schedule every variant follows, seeds and precision.

OVERFITTING (dropout, paper 4.2; augmentation, paper 4.1; mixed bfloat16 against float32): 5,000 CIFAR-10
training images for 40 epochs (200,000 images seen, 1,560 steps of 128), the last 5,000 of the 50,000 held out as
the validation split the curves are read on (2,000 of them each epoch), test error on the 10,000 test images.

- Why this size: the unregularised two-tower net must overfit clearly within the budget. A pilot at 5,000 images
  (dropout 0.5, plateau schedule) reached 18% training error by epoch 39 against 31% test error; without dropout
  the net fits faster still, so the gap the regularisers are claimed to close opens within 40 epochs.
- Schedule, the same for every variant: learning rate 0.01 to the end of epoch 28, 0.001 to epoch 35, 0.0001 to
  40. Chosen from the baseline (dropout 0.5), which in the pilot held 0.01 under the plateau rule until epoch 27;
  a plateau rule would instead let each variant's noise choose its own drops (the pilot's no-dropout run dropped
  after epoch 11 on one noisy rise and ended underfit), and then the schedule, not the regulariser, would decide.
- Seeds: 3 per variant, paired (seed s of every variant shares initial weights and data order). At the seed sd of
  the shorter runs (0.6 to 2.2 points), a paired 95% interval over 3 seeds is +-1.5 to +-5 points: enough for the
  pilot's 10-point dropout effect and for bfloat16's equivalence to within a few points, not for a 1-point effect.
- Precision: mixed bfloat16 (about twice float32's speed on a CPU with AMX), which the precision claim checks in this same regime
  against float32; the float32 runs of that check are the only float32 runs.
- Cost: 200,000 images at ~330 images/s (mixed bfloat16, CIFAR-10 towers, with the per-epoch validation and
  checkpoint) is ~10 min a run; ~17 min in float32 at ~200 images/s.
"""

OVERFITTING = {
    "train_limit": 5000, "validation_images": 5000, "epochs": 40, "seeds": 3,
    "recipe": {"lr_drop_epochs": (28, 35)},
    "model": {"precision": "mixed_bfloat16"},
}
