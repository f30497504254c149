from types import SimpleNamespace

import pytest
import torch

from vla.training.module import VLATrainingModule, shift_images


def test_shift_moves_every_frame_of_a_sample_together_by_at_most_pad():
    torch.manual_seed(0)
    images = torch.zeros(16, 2, 2, 3, 17, 17, dtype=torch.uint8)
    images[..., 8, 8] = 255  # one bright pixel in the middle of every frame and camera
    out = shift_images(images, 3)
    assert out.shape == images.shape and out.dtype == torch.uint8
    offsets = set()
    for b in range(16):
        where = [
            tuple((out[b, t, v, 0] == 255).nonzero()[0].tolist())
            for t in range(2)
            for v in range(2)
        ]
        assert len(set(where)) == 1  # frames and cameras moved together
        r, c = where[0]
        assert abs(r - 8) <= 3 and abs(c - 8) <= 3
        offsets.add((r, c))
    assert len(offsets) > 4  # different samples got different shifts


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    m = VLATrainingModule.__new__(VLATrainingModule)
    m.warmup_steps, m.max_steps, m.min_lr_ratio = 10, 110, 0.1
    assert m._lr_factor(0) == 0.1 and m._lr_factor(9) == 1.0
    assert m._lr_factor(60) < 1.0 and abs(m._lr_factor(110) - 0.1) < 1e-9


def test_ema_averages_batchnorm_statistics_too(vla_factory, batch_factory):
    model = vla_factory()
    module = VLATrainingModule(model, ema_decay=0.5)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    ema_bn = next(m for m in module.ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    start = ema_bn.running_mean.clone()
    batch = batch_factory(model)
    model.train()
    for _ in range(3):
        expected = start.clone() if _ == 0 else ema_bn.running_mean.clone()
        with torch.no_grad():
            model(batch)  # training-mode forward: BatchNorm running statistics move
        module.on_train_batch_end(None, batch, 0)
        expected.lerp_(bn.running_mean, 0.5)
        assert torch.allclose(ema_bn.running_mean, expected)
    assert not torch.allclose(ema_bn.running_mean, start)  # the EMA statistics moved
    assert int(ema_bn.num_batches_tracked) == int(bn.num_batches_tracked) == 3
    assert module.policy_model is module.ema


@pytest.mark.parametrize(
    "part, key",
    [("llm", "_train_body"), ("obs", "_train_encode")],  # optim.compile, optim.compile_vision
)
def test_compiled_training_part_matches_eager_and_leaves_eval_and_weights_alone(
    vla_factory, batch_factory, part, key
):
    torch.manual_seed(0)
    model = vla_factory()
    batch = batch_factory(model)
    model.train()
    eager = model(batch)["loss"]
    names = list(model.state_dict())
    owner = getattr(model, part)
    # dynamo traces the real part; the eager backend skips inductor's C++ build (seconds)
    owner.compile_training(backend="eager")
    compiled_calls = []
    compiled = owner.__dict__[key]
    owner.__dict__[key] = lambda *a, **k: compiled_calls.append(1) or compiled(*a, **k)
    assert torch.allclose(model(batch)["loss"], eager, atol=1e-6)
    assert compiled_calls == [1]  # a training forward runs the compiled part ...
    model.eval()
    model(batch)
    with torch.no_grad():
        model.train()
        model(batch)
    assert compiled_calls == [1]  # ... evaluation and no-grad forwards the eager one
    assert list(model.state_dict()) == names  # not a submodule: checkpoints are unchanged


def test_compile_without_a_cpp_compiler_trains_eager_with_a_message(
    vla_factory, monkeypatch, capsys
):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    module = VLATrainingModule(vla_factory(), compile=True)
    assert not module.compiled and "_train_body" not in module.model.llm.__dict__
    assert "C++ compiler" in capsys.readouterr().out


def test_compile_mode_reaches_torch_compile_and_an_unknown_one_is_refused(vla_factory, monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda module, **options: seen.append(options) or module)
    module = VLATrainingModule(
        vla_factory(), compile=True, compile_vision=True, compile_mode="max-autotune-no-cudagraphs"
    )
    if module.compiled:  # a C++ compiler is here (else both run eager, tested above)
        assert seen == [{"mode": "max-autotune-no-cudagraphs"}] * 2
    with pytest.raises(ValueError, match="optim.compile_mode='fastest'.*max-autotune"):
        VLATrainingModule(vla_factory(), compile=True, compile_mode="fastest")


def test_adamw_is_fused_else_multi_tensor_or_a_loop(vla_factory):
    assert VLATrainingModule(vla_factory()).configure_optimizers()["optimizer"].defaults["fused"]
    kw = {"fused_optimizer": False}
    optimizer = VLATrainingModule(vla_factory(), **kw).configure_optimizers()["optimizer"]
    assert optimizer.defaults["foreach"] is True and not optimizer.defaults["fused"]
    loop = VLATrainingModule(vla_factory(), foreach_optimizer=False, **kw).configure_optimizers()
    assert not loop["optimizer"].defaults["foreach"]
    # under a gradient scaler (16-mixed) the unscaling has to come before clipping: not fused
    scaled = VLATrainingModule(vla_factory())
    scaled._trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=object()))
    optimizer = scaled.configure_optimizers()["optimizer"]
    assert optimizer.defaults["foreach"] is True and not optimizer.defaults["fused"]


def test_a_fused_adamw_gets_its_gradients_clipped_by_norm_or_value(vla_factory, batch_factory):
    module = VLATrainingModule(vla_factory())
    optimizer = module.configure_optimizers()["optimizer"]
    model = module.model.train()
    model(batch_factory(model))["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert float(torch.nn.utils.get_total_norm(grads)) > 1e-3
    module.configure_gradient_clipping(optimizer, 1e-3, "norm")
    assert float(torch.nn.utils.get_total_norm(grads)) == pytest.approx(1e-3, rel=1e-3)
    module.configure_gradient_clipping(optimizer, 1e-5, "value")
    assert max(float(g.abs().max()) for g in grads) <= 1e-5


def test_a_run_saved_before_the_prompt_encoder_is_refused_on_resume(vla_factory):
    module = VLATrainingModule(vla_factory(), max_steps=10)
    state = {f"model.{k}": v for k, v in module.model.state_dict().items()}
    module.on_load_checkpoint({"state_dict": state})  # today's layout resumes
    legacy = {k.replace("model.prompt.obs.", "model.obs."): v for k, v in state.items()}
    with pytest.raises(ValueError, match="init_from=<out>/checkpoints/last"):
        module.on_load_checkpoint({"state_dict": legacy})


def test_training_metrics_are_logged_on_the_steps_the_loggers_write(vla_factory):
    module = VLATrainingModule(vla_factory())
    assert module._logs_this_step()  # no trainer: every call logs
    logged = []
    for step in range(45):
        module._trainer = SimpleNamespace(log_every_n_steps=20, global_step=step)
        logged += [step] if module._logs_this_step() else []
    assert logged == [0, 19, 39]  # Lightning writes at (step + 1) % 20 == 0
