"""Loss-based membership inference that measures membership, not item difficulty.

The attack (bilevel boundary-unlearning study, SCRUB; here with the corrections of the
membership-inference literature): members = the forget *training* items, non-members =
unseen items of the same kind, features = per-item losses (``1 − SSIM``, NMSE per 2-D slice
or per volume; cross-entropy, soft Dice loss per axial slice or ``1 − Dice``, MAE per
subject), a standardised logistic regression scored out of fold.

Three things make its number mean membership:

1. **No volume identity.** Items are slices of volumes (or volumes). The default score
   (``scorer: threshold``) fits nothing: minus the standardised (calibrated) loss, the
   offline LiRA / Watson et al. score. The optional learned attack (``scorer: logistic``, a
   standardised logistic regression) is scored out of fold with ``StratifiedGroupKFold`` over
   the volume / subject ids: one volume's slices are never split between training and test
   folds, so the attack cannot score by recognising a volume.
2. **Difficulty calibration.** Items differ in inherent difficulty (a knee that is hard to
   reconstruct is hard for every model), so a model that never saw the members "detects"
   them if the member volumes happen to be easier. Each feature is the model's loss minus the
   loss of a ``reference`` model (a retain-only model that never saw any forget-domain item)
   on the same slice / item (Watson et al., ICLR 2022; the offline form of LiRA, Carlini et
   al. 2022; U-LiRA, Hayes et al. 2024). Without a reference model in the results the attack
   runs uncalibrated and its note says so; the uncalibrated attack is always reported as a
   diagnostic next to the calibrated one.
3. **A null check in every run.** The attack on models that never saw the members (the
   oracle; for reconstruction also zero-filling, which trained on nothing) must sit at
   chance: where a null model's AUC interval excludes 0.5, the task's privacy verdicts read
   ``uninformative``.

Reported per model: the ROC AUC of the out-of-fold member scores and the TPR at a low FPR
(``fpr``), each with a percentile-bootstrap interval over **volumes / subjects** (member and
non-member groups resampled with replacement, separately; all slices of a drawn group come
along; folds and scores fixed), and the paired difference of the AUC to the oracle's on the
same resampled groups. The privacy verdict is the equivalence rule of
:mod:`med_unlearning.metrics.statistics` on that difference with ``privacy_tolerance``.

The package splits the attack by job: :mod:`.features` (per-item / per-slice losses),
:mod:`.scorers` (member scores, grouped folds), :mod:`.bootstrap` (AUC / TPR with intervals
over groups), :mod:`.attack` (one model's attack) and :mod:`.study` (every model of a study,
calibration, null check and privacy verdicts). Import from the package.
"""

from med_unlearning.metrics.membership.attack import (
    MembershipAttackResult,
    membership_inference_attack,
)
from med_unlearning.metrics.membership.bootstrap import (
    GroupBootstrap,
    attack_metrics,
    tpr_at_fpr,
)
from med_unlearning.metrics.membership.features import (
    GRANULARITIES,
    as_loss,
    loss_features,
    slice_loss_features,
)
from med_unlearning.metrics.membership.scorers import (
    MembershipInputError,
    grouped_folds,
    grouped_out_of_fold_scores,
    member_scores,
    threshold_scores,
)
from med_unlearning.metrics.membership.study import (
    MEMBERSHIP_COLUMNS,
    NULL_COLUMNS,
    NULL_ROLE,
    membership_attacks,
    membership_attacks_from_params,
    nonmember_set_of,
    null_checks,
)

__all__ = [
    "as_loss",
    "GRANULARITIES",
    "MEMBERSHIP_COLUMNS",
    "NULL_COLUMNS",
    "NULL_ROLE",
    "GroupBootstrap",
    "MembershipAttackResult",
    "MembershipInputError",
    "attack_metrics",
    "grouped_folds",
    "grouped_out_of_fold_scores",
    "loss_features",
    "member_scores",
    "membership_attacks",
    "membership_attacks_from_params",
    "membership_inference_attack",
    "nonmember_set_of",
    "null_checks",
    "slice_loss_features",
    "threshold_scores",
    "tpr_at_fpr",
]
