"""golden.training.language: the numpy transformer's backward against finite differences, the text, the runs."""

import numpy as np
import pytest

from golden.training import language, train
from golden.training.schemes import get_scheme


@pytest.fixture(autouse=True)
def one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        yield


def tiny(scheme="fp32", dtype=np.float64, seed=0, **kwargs):
    shape = dict(d=8, heads=2, n_layers=2, context=5) | kwargs
    return language.Transformer(7, get_scheme(scheme), np.random.default_rng(seed), dtype=dtype, **shape)


def loss_of(model, ids, targets):
    return train.softmax_cross_entropy(model.forward(ids), targets.ravel())[0]


@pytest.mark.parametrize("fused_qkv", [False, True])
def test_fp32_backward_matches_finite_differences(rng, seed, fused_qkv):
    model = tiny(fused_qkv=fused_qkv)
    ids, targets = rng.integers(0, 7, (3, 5)), rng.integers(0, 7, (3, 5))
    _, grad = train.softmax_cross_entropy(model.forward(ids), targets.ravel())
    model.backward(grad)
    eps = 1e-6
    for layer in model.layers:
        for name, param in layer.params.items():
            picks = [tuple(rng.integers(0, n) for n in param.shape) for _ in range(6)]
            for index in picks:
                saved = param[index]
                param[index] = saved + eps
                up = loss_of(model, ids, targets)
                param[index] = saved - eps
                down = loss_of(model, ids, targets)
                param[index] = saved
                numeric = (up - down) / (2 * eps)
                assert np.isclose(layer.grads[name][index], numeric, rtol=1e-5, atol=1e-9), (
                    f"seed {seed}: d loss / d {layer.name}.{name}{index}: backward {layer.grads[name][index]}, "
                    f"finite difference {numeric}")


def test_attention_is_causal(rng):
    model = tiny()
    ids = rng.integers(0, 7, (2, 5))
    changed = ids.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 7
    before, after = model.forward(ids).reshape(2, 5, 7), model.forward(changed).reshape(2, 5, 7)
    assert np.array_equal(before[:, :3], after[:, :3]) and not np.allclose(before[:, 3:], after[:, 3:])


@pytest.mark.parametrize("scheme", ["fourbit", "mxfp4", "nvfp4"])
def test_block_linear_layers_run_through_the_scheme(scheme, rng):
    model = tiny(scheme, np.float32, d=32, heads=2, context=8)
    quantized = [layer.name for layer in model.quantized_layers]
    assert quantized == [f"block{i}.{n}" for i in range(2)
                         for n in ("attn.q", "attn.k", "attn.v", "attn.proj", "fc1", "fc2")]
    ids = rng.integers(0, 7, (4, 8))
    optimizer = language.Adam(model)
    losses = [language.train_step(model, optimizer, ids, np.roll(ids, -1, axis=1), lr=3e-3) for _ in range(8)]
    assert losses[-1] < losses[0]
    assert all(layer.stats.nonzero_codes > 0 for layer in model.quantized_layers)


def test_q_k_and_v_have_their_own_gradient_scale(rng):
    """Three layers, three GradScales: the small q and k gradients are not flushed against v's large ones."""
    model = tiny("fourbit", np.float32, d=32, heads=2, context=8)
    scales = {}
    quant = model.quantized_layers[0].quant
    record = quant.scale.__call__
    quant.scale = lambda g16, name: scales.setdefault(name, record(g16, name))
    ids = rng.integers(0, 7, (4, 8))
    language.train_step(model, language.Adam(model), ids, np.roll(ids, -1, axis=1), lr=3e-3)
    attention = [scales[f"block0.attn.{part}"] for part in "qkv"]
    assert len(set(attention)) > 1, attention
    assert [layer.name for layer in tiny("fourbit", np.float32, fused_qkv=True).quantized_layers][:2] == [
        "block0.attn.qkv", "block0.attn.proj"]


def test_signed_pact_codes_gradients_and_first_batch_alpha():
    from golden import int4
    stage = language.SignedPact(np.float32)
    x = np.array([[-3.0, -0.5, 0.2, 0.9, 2.5]], np.float32)
    alpha = int4.sawb_alpha(x)
    codes, step = stage.forward(x)
    assert float(stage.params["alpha"]) == np.float32(alpha) and step == float(np.float32(alpha)) / 7
    expected = np.rint(np.clip(x, -float(np.float32(alpha)), float(np.float32(alpha))) / step)
    assert codes.dtype == np.int8 and np.array_equal(codes, expected)
    grad = stage.backward(np.ones_like(x))
    outside = np.abs(x) >= float(np.float32(alpha))
    assert np.array_equal(grad, np.where(outside, 0, 1)) and stage.grad_alpha == np.sign(x[outside]).sum()
    stage.forward(10 * x)       # alpha stays once set: it is learned from then on
    assert float(stage.params["alpha"]) == np.float32(alpha)


def test_calibrated_pact_starts_at_the_first_batch_sawb_clip():
    from golden import int4
    stage = language.CalibratedPact(np.float32)
    x = np.abs(np.random.default_rng(0).standard_normal((16, 8))).astype(np.float32)
    codes, step = stage.forward(x)
    alpha = float(np.float32(int4.sawb_alpha(x)))
    assert float(stage.params["alpha"]) == alpha and codes.dtype == np.uint8 and codes.max() == 15


def test_text_is_pydoc_topics_split_90_10():
    text = language.load_text()
    from pydoc_data.topics import topics
    total = sum(len(v) for v in topics.values())
    assert len(text.train) + len(text.val) == total and abs(len(text.train) / total - 0.9) < 1e-5
    assert text.vocab == "".join(sorted(text.vocab)) and 60 < len(text.vocab) < 200
    assert 3 < text.unigram_bpc < np.log2(len(text.vocab))


def test_a_short_run_learns_and_reports_bpc():
    text = language.Text("the quick brown fox jumps over the lazy dog. " * 400)
    config = train.RunConfig("pydoc", "transformer", "mxfp4", epochs=1, seed=0, batch_size=8)
    result = language.run(config, text=text, shape=dict(d=32, heads=2, n_layers=1))
    assert result["final_val_bpc"] < result["unigram_bpc"] and result["invalid_blocks"] == 0


def test_bad_configurations():
    with pytest.raises(ValueError, match="goes with the pydoc dataset"):
        train.RunConfig("digits", "transformer", "fp32", 1)
    with pytest.raises(ValueError, match="golden.training.language.run"):
        train.run(train.RunConfig("pydoc", "transformer", "fp32", 1))
    with pytest.raises(ValueError, match="d=10, heads=4"):
        tiny(d=10, heads=4)


def test_table_rows_of_the_language_model():
    from golden.training.table import markdown, summarize

    def fake(scheme, seed, bpc, cpu):
        config = {"dataset": "pydoc", "model": "transformer", "scheme": scheme, "epochs": 2, "seed": seed,
                  "batch_size": 16, "lr": 3e-3}
        return {"config": config, "final_val_bpc": bpc, "epoch_seconds": cpu, "epoch_cpu_seconds": cpu,
                "wall_seconds": 1.0, "history": []}

    rows, _, targets = summarize([fake("fp32", 0, 2.0, 10.0), fake("fp32", 1, 2.2, 10.0),
                                  fake("fourbit", 0, 2.2, 25.0), fake("fourbit", 1, 2.2, 25.0),
                                  fake("mxfp4", 0, 2.4, 40.0)])
    by_scheme = {r["scheme"]: r for r in rows}
    assert by_scheme["fp32"]["metric"] == "val_bpc" and np.isclose(by_scheme["fourbit"]["gap_to_fp32"], 4.7619, atol=1e-4)
    assert [(t["what"].split(": ")[1], t["met"]) for t in targets] == [
        ("fourbit within 5.0% of fp32's validation bits per character", True),
        ("mxfp4 within 5.0% of fp32's validation bits per character", False),
        ("fourbit epoch <= 3.0x fp32 epoch", True), ("mxfp4 epoch <= 3.0x fp32 epoch", False)]
    text = markdown(rows, targets, {"mode": "test", "seeds": [0, 1], "workers": 2, "total_wall_seconds": 1})
    assert "| 2.100 ± 0.141 bpc |" in text and "| +4.76 % |" in text and "(gap +14.29%)" in text


def test_ablation_variants_run_and_the_float_backend_equals_the_integer_units():
    from golden.training import lm_ablation
    text = language.Text("the quick brown fox jumps over the lazy dog. " * 200)
    shape = dict(d=32, heads=2, n_layers=2)

    def bpc(variant, configure=None):
        scheme, variant_configure = lm_ablation.VARIANTS[variant]
        config = train.RunConfig("pydoc", "transformer", scheme, epochs=1, seed=0, batch_size=8)
        return language.run(config, text=text, shape=shape, configure=configure or variant_configure)["final_val_bpc"]

    def float_backend(model):
        model.quantized_layers[0].quant.backend = lm_ablation.FloatBackend()

    assert bpc("fourbit", float_backend) == bpc("fourbit")
    results = {variant: bpc(variant) for variant in lm_ablation.VARIANTS}
    assert len(set(results.values())) == len(results), results     # every variant changes the run
    assert all(value < text.unigram_bpc for value in results.values()), results


def test_probe_leaves_the_run_unchanged_and_records_every_layer_at_its_steps():
    from golden.training import lm_probe
    text = language.Text("the quick brown fox jumps over the lazy dog. " * 200)
    shape = dict(d=32, heads=2, n_layers=2)
    config = train.RunConfig("pydoc", "transformer", "fourbit", epochs=1, seed=0, batch_size=8)
    report = lm_probe.probe(0, text=text, shape=shape, steps=(1, 3), batch=8)
    assert report["val_bpc"] == language.run(config, text=text, shape=shape)["final_val_bpc"]
    assert sorted({(r["step"], r["layer"]) for r in report["records"]}) == sorted(
        (step, f"block{b}.{name}") for step in (1, 3) for b in (0, 1)
        for name in ("attn.q", "attn.k", "attn.v", "attn.proj", "fc1", "fc2"))


def test_probe_gradient_errors_by_hand():
    """Every gradient 2**-3 is a phase-0 level of s = -3 (exact) and lies below phase 1's threshold
    2.5 * 2**-4 between 2**-4 and 2**-2 (rounds to 2**-4: half the value); one row 16 times smaller lies 4
    binades below the tensor's maximum and is a level of phase 0 (exact) but not of phase 1 (halved) too."""
    from golden.training import lm_probe
    g = np.full((2, 4), 2.0 ** -3, np.float32)
    g[1] /= 16
    out = lm_probe.backward_errors(g, np.eye(2), np.eye(4))
    assert out["s"] == -3 and out["f16_rel_err"] == 0 and out["f16_flushed"] == 0
    assert out["fp4_rel_err_0"] == 0 and out["fp4_scale_0"] == 1 and out["dx_rel_err"] == 0
    assert out["fp4_rel_err_1"] == 0.5 and out["fp4_scale_1"] == 0.5 and out["dw_rel_err"] == 0.5
    assert out["row_max_binades_below_median"] == 2 and out["fp4_rel_err_0_row_scale"] == 0
