"""Notebook 05 (MwT and NeMo): what its text claims, checked on its recorded values."""

from __future__ import annotations

from .claim import Claim, Results, for_run, paired_verdict, undefined_as_nan


def _modular_smaller_at_matched_accuracy(r: Results) -> bool:
    # matched per-block weight retention (mean over the seeds reaching the target) MwT / NeMo / standard:
    # smoke digits .594 / .648 / .883 (1 of 2 seeds reach it); cpu digits .446 / .497 / .849 (3 of 3);
    # cpu MNIST .868 / .865 / .935 (3 of 3, sd .001 / .003 / .005: the unmasked first layer holds most
    # weights). Pooled KRR: cpu digits .169 / .245 / .773; cpu MNIST .060 / .039 / .537
    reached = for_run(r, smoke=1, cpu=r["seeds"])
    gap = for_run(r, smoke=0.15, cpu=0.2, mnist=0.04)
    return all(
        r[f"matched_{m}_reached"] >= reached
        and r[f"matched_{m}_mean"] < r["matched_standard_mean"] - gap
        and r[f"matched_{m}_krr"] < 0.5 * r["matched_standard_krr"]
        for m in ("mwt", "nemo")
    )


def _stated_verdicts_hold(r: Results) -> bool:
    # cpu digits: MwT smaller than NeMo (.446 +- .016 vs .497 +- .008), released smaller than supcon
    # (.497 vs .587); cpu MNIST: both "not distinguishable" (.868 / .865 / .877); smoke: both "not
    # distinguishable" (one seed reaches the target)

    def seeds(name: str) -> list[float]:
        return [undefined_as_nan(r[f"matched_{name}_s{s}"]) for s in range(r["seeds"])]

    return r["mwt_vs_nemo"] == paired_verdict(seeds("mwt"), seeds("nemo")) and r[
        "released_vs_supcon"
    ] == paired_verdict(seeds("nemo"), seeds("supcon"))


CLAIMS: list[Claim] = [
    Claim(
        "standard training: a module is most of the network (at threshold 0.9 and at matched accuracy)",
        # per-block weight retention, threshold 0.9 / matched: smoke digits .961 / .883;
        # cpu digits .880 / .849 (3 seeds, sd .010)
        lambda r: min(r["standard_358_weight_retention"], r["matched_standard_mean"]) > 0.75,
    ),
    Claim(
        "MwT and NeMo modules are smaller than standard ones at matched accuracy",
        _modular_smaller_at_matched_accuracy,
    ),
    Claim("the MwT vs NeMo verdict the text states follows from the seeds", _stated_verdicts_hold),
    Claim(
        "MwT and NeMo couple less than standard training",
        # coupling MwT / NeMo / standard: smoke .031 / .080 / .656; cpu digits .000 / .018 / .566;
        # cpu MNIST .018 / .024 / .500
        lambda r: all(r[f"{m}_coupling"] < r["standard_coupling"] - 0.3 for m in ("mwt", "nemo")),
    ),
    Claim(
        "the masked models stay accurate",
        # test accuracy MwT / NeMo: smoke .953 / .967; cpu digits .975 / .975; cpu MNIST .930 / .939
        lambda r: all(
            r[f"{m}_test_acc"] > for_run(r, smoke=0.9, cpu=0.95, mnist=0.9) for m in ("mwt", "nemo")
        ),
    ),
    Claim(
        "a larger alpha gives smaller modules",
        # weight retention smallest / largest alpha: smoke .906 / .555; cpu digits .635 / .411;
        # cpu MNIST .912 / .864 (the unmasked first layer); the unit retention is checked:
        # smoke .813 / .109; cpu digits .453 / .117; cpu MNIST .375 / .031
        lambda r: r["tradeoff_units_large_alpha"] < r["tradeoff_units_small_alpha"] - 0.1,
    ),
    Claim(
        "CNN: MwT modules keep fewer kernels than standard ones at cpu (not yet at smoke's 100 steps)",
        # pooled KRR MwT / standard: smoke .922 / .906; cpu digits .578 / .906; cpu MNIST .766 / .922
        lambda r: (
            r["cnn_mwt_358_pooled_unit_retention"]
            < for_run(r, smoke=1.1, cpu=0.75, mnist=0.9) * r["cnn_standard_358_pooled_unit_retention"]
        ),
    ),
    Claim(
        "the tiny ViT learns (chance 0.1)",
        # test accuracy standard / NeMo: smoke .947 / .930; cpu digits .969 / .978; cpu MNIST .947 / .944
        lambda r: min(r["vit_standard_test_acc"], r["vit_nemo_test_acc"]) > for_run(r, smoke=0.8, cpu=0.9),
    ),
    Claim(
        "tiny ViT: NeMo modules smaller than standard ones, and accurate",
        # retention NeMo / standard: smoke .736 / .861; cpu digits .595 / .766; cpu MNIST .561 / .686;
        # module accuracy smoke .936, cpu digits .991, cpu MNIST .971
        lambda r: (
            r["vit_nemo_358_weight_retention"] < r["vit_standard_358_weight_retention"] - 0.08
            and r["vit_nemo_358_module_acc"] > 0.8
        ),
    ),
]

KEY_RESULT = (
    "module {{3,5,8}} at matched accuracy ({seeds} seeds), weight retention standard / MwT / NeMo "
    "{matched_standard_mean:.3f} / {matched_mwt_mean:.3f} / {matched_nemo_mean:.3f}, KRR "
    "{matched_standard_krr:.3f} / {matched_mwt_krr:.3f} / {matched_nemo_krr:.3f}; "
    "MwT's modules relative to NeMo's: {mwt_vs_nemo}"
)
