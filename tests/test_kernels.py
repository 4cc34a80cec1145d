"""The CPU training kernels compute what transformers' kernels compute: same attention, same dropout law."""
import contextlib
import copy

import pytest
import torch
from torch import nn

from core import kernels
from core.models import EncoderClassifier, fresh_encoder, load_base


def test_dropout_is_identity_when_not_training_or_p_zero():
    x = torch.randn(4, 5)
    assert kernels.fast_dropout(x, 0.3, training=False) is x
    assert kernels.fast_dropout(x, 0.0) is x
    assert torch.equal(kernels.fast_dropout(x, 1.0), torch.zeros_like(x))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_zeroes_a_share_p_and_keeps_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    y = kernels.fast_dropout(x, p)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.003                       # 1e6 draws: the std. error is < 0.0005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    assert abs(y.mean().item() - 1.0) < 0.01


def test_dropout_backward_uses_the_forward_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    y = kernels.fast_dropout(x, 0.25)
    y.backward(torch.ones_like(y))
    kept = y != 0
    assert torch.equal(x.grad != 0, kept)
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.75))


def test_dropout_is_seeded_by_torch_and_draws_anew_each_call():
    x = torch.ones(256, 256)
    torch.manual_seed(7)
    a = kernels.fast_dropout(x, 0.1)
    b = kernels.fast_dropout(x, 0.1)
    torch.manual_seed(7)
    assert torch.equal(kernels.fast_dropout(x, 0.1), a)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_keep_threshold_drops_exactly_round_p_65536_of_all_16_bit_values(p):
    every_value = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    assert int((~kernels._keep(every_value, p)).sum()) == round(p * 65536)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_softmax_values_and_gradient_against_a_float64_reference(dtype):
    torch.manual_seed(2)
    x = (3 * torch.randn(4, 3, 83, 83)).to(dtype).requires_grad_()     # ~80 tokens, as the lab's texts
    g = torch.randn(4, 3, 83, 83).to(dtype)
    ours = kernels._Softmax.apply(x)
    (ours * g).sum().backward()
    exact = x.detach().double().softmax(-1)
    y = ours.detach().double()
    exact_grad = y * (g.double() - (g.double() * y).sum(-1, keepdim=True))   # softmax's Jacobian at our output
    # bf16: rounded once from a float32 softmax, so within half a bf16 unit (2^-8 relative) of the exact
    # value; float32: a few units of float32's exp and sum.
    unit = 2 ** -8 if dtype == torch.bfloat16 else 2 ** -18
    assert ours.dtype == dtype
    assert ((y - exact).abs() <= unit * exact + 1e-30).all()
    assert torch.allclose(x.grad.double(), exact_grad, rtol=2 * unit, atol=4 * unit * exact_grad.abs().max().item())
    if dtype == torch.float32:
        assert torch.allclose(ours, x.softmax(-1), atol=1e-7)


def test_attention_with_a_float32_mask_on_bf16_scores_gives_no_nan():
    """A row with nothing to attend to stays finite even when the mask's dtype is not the scores'."""
    q, k, v = (torch.randn(1, 2, 4, 8, dtype=torch.bfloat16) for _ in range(3))
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1, :] = torch.finfo(torch.float32).min                       # query 1 may attend to nothing
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, probs = kernels.attention(nn.Module().eval(), q, k, v, mask)
    assert torch.isfinite(out.float()).all() and torch.isfinite(probs.float()).all()


def test_the_lab_attention_is_registered_with_its_own_mask():
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    with kernels.cpu_kernels(_classifier(), torch.device("cpu")):
        assert ALL_MASK_ATTENTION_FUNCTIONS[kernels.ATTENTION] is kernels.attention_mask_for


def test_random_bits_are_uniform_over_all_16_bit_values():
    torch.manual_seed(5)
    bits = kernels._random_int16((512, 1024), "cpu")
    assert bits.dtype == torch.int16 and bits.shape == (512, 1024)
    counts = torch.bincount(bits.flatten().to(torch.int32) + 32768, minlength=65536).float()
    # 2^19 draws over 2^16 values: 8 expected per value; the chi-square statistic has 65535 degrees
    # of freedom (mean 65535, sd 362), so 6 sd either side is a fair generator.
    chi2 = ((counts - 8) ** 2 / 8).sum().item()
    assert abs(chi2 - 65535) < 6 * 362
    high_byte = (bits.flatten().to(torch.int32) >> 8) & 255
    assert abs(high_byte.float().mean().item() - 127.5) < 0.5


def test_dropout_on_odd_sizes_non_contiguous_and_bf16():
    torch.manual_seed(3)
    x = torch.ones(999, 1001, dtype=torch.bfloat16).t()          # 999*1001 is odd; .t() is not contiguous
    y = kernels.fast_dropout(x, 0.2)
    assert y.shape == x.shape and y.dtype == torch.bfloat16
    assert abs((y == 0).float().mean().item() - 0.2) < 0.003


def test_attention_dropout_keeps_the_exact_scale_in_bf16():
    """Kept weights are scaled by exactly 1/(1-p) (not by its bf16 rounding, 0.16 % short at p=0.1)."""
    class Training(nn.Module):
        training = True

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 40, 8) for _ in range(3))
    torch.manual_seed(11)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = kernels.attention(Training(), q, k, v, None, dropout=0.1)
    torch.manual_seed(11)
    keep = kernels._keep(kernels._random_int16((2, 3, 40, 40), "cpu"), 0.1)
    probs = torch.softmax((q @ k.transpose(2, 3)) * 8 ** -0.5, -1)
    expected = ((probs * keep) @ v / 0.9).transpose(1, 2)
    assert 0.05 < (~keep).float().mean().item() < 0.15
    assert torch.allclose(out.float(), expected, atol=0.03)
    assert abs(out.float().mean().item() - expected.mean().item()) < 2e-3


def _classifier():
    torch.manual_seed(0)
    return EncoderClassifier(fresh_encoder("minilm")[1], num_labels=3)


def _batch():
    tokenizer, _ = load_base("minilm")
    enc = tokenizer(["oil prices rose sharply in march after the opec meeting", "a short one", "profit up"],
                    padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def test_attention_dropout_is_active_only_in_training():
    model = _classifier()
    ids, mask = _batch()
    with torch.no_grad(), kernels.cpu_kernels(model, torch.device("cpu")):
        model.eval()
        assert torch.equal(model(ids, mask), model(ids, mask))
        model.train()
        assert not torch.equal(model(ids, mask), model(ids, mask))


def test_cpu_attention_matches_transformers_sdpa_with_padding():
    model = _classifier().eval()
    ids, mask = _batch()
    with torch.no_grad():
        reference = model(ids, mask)
        with kernels.cpu_kernels(model, torch.device("cpu")):
            assert model.encoder.config._attn_implementation == kernels.ATTENTION
            ours = model(ids, mask)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_cpu_attention_under_bf16_autocast_agrees_with_sdpa():
    model = _classifier().eval()
    ids, mask = _batch()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        reference = model(ids, mask).float()
        with kernels.cpu_kernels(model, torch.device("cpu")):
            ours = model(ids, mask).float()
    assert torch.allclose(ours, reference, atol=2e-2)       # bf16 rounding of the scores, nothing more
    assert torch.equal(ours.argmax(-1), reference.argmax(-1))


def test_attention_mask_takes_the_autocast_dtype_and_padding_gets_no_weight():
    from transformers.masking_utils import bidirectional_mask_function

    padding = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    kw = dict(batch_size=2, q_length=5, kv_length=5, mask_function=bidirectional_mask_function,
              attention_mask=padding)
    assert kernels.attention_mask_for(**kw).dtype == torch.float32
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 8, dtype=torch.bfloat16) for _ in range(3))   # as the projections give them
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mask = kernels.attention_mask_for(**kw)
        assert mask.dtype == torch.bfloat16
        _, probs = kernels.attention(nn.Module().eval(), q, k, v, mask)
    assert probs.dtype == torch.bfloat16
    assert torch.equal(probs[0, :, :, 3:], torch.zeros_like(probs[0, :, :, 3:]))   # padded keys: exactly 0
    assert torch.isfinite(probs).all()
    assert torch.allclose(probs.float().sum(-1), torch.ones(2, 4, 5), atol=2e-2)


def test_training_gradients_match_without_dropout():
    ids, mask = _batch()
    a = _classifier()
    b = copy.deepcopy(a)
    for m in list(a.modules()) + list(b.modules()):
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    grads = []
    for model, use in ((a, False), (b, True)):
        model.train()
        ctx = kernels.cpu_kernels(model, torch.device("cpu")) if use else torch.enable_grad()
        with ctx:
            model(ids, mask).logsumexp(-1).sum().backward()
        grads.append(model.encoder.encoder.layer[0].attention.self.query.weight.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_bf16_training_gradients_are_as_close_to_fp32_as_sdpas():
    """Under bf16 autocast the lab's attention (bf16 scores, softmax backward on bf16) loses no more
    gradient precision than transformers' SDPA does, measured against an fp32 reference."""
    ids, mask = _batch()
    models = [_classifier() for _ in range(3)]
    grads = []
    for i, model in enumerate(models):
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
        model.train()
        ctx = kernels.cpu_kernels(model, torch.device("cpu")) if i == 2 else contextlib.nullcontext()
        with ctx, torch.autocast("cpu", dtype=torch.bfloat16, enabled=i > 0):
            model(ids, mask).float().logsumexp(-1).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.encoder.encoder.layer[0].parameters()]))
    reference, sdpa_bf16, lab_bf16 = grads

    def error(g):
        return ((g - reference).norm() / reference.norm()).item()

    assert error(lab_bf16) <= 1.5 * error(sdpa_bf16) + 1e-3


def test_kernels_swap_every_dropout_and_restore_the_attention():
    from peft import LoraConfig, get_peft_model

    model = _classifier()
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["query", "value"],
                                     modules_to_save=["head"]))
    before = model.encoder.config._attn_implementation
    n_dropout = sum(type(m) is nn.Dropout for m in model.modules())
    assert n_dropout > 0
    with pytest.raises(RuntimeError, match="stopped"):
        with kernels.cpu_kernels(model, torch.device("cpu")):
            assert sum(type(m) is nn.Dropout for m in model.modules()) == 0
            assert sum(type(m) is kernels.Dropout for m in model.modules()) == n_dropout
            lora = [m for name, m in model.named_modules() if name.endswith("lora_dropout.default")]
            assert lora and all(type(m) is kernels.Dropout and m.p == 0.1 for m in lora)
            assert model.encoder.config._attn_implementation == kernels.ATTENTION
            raise RuntimeError("stopped")          # a Stop or a failure inside the training loop
    assert model.encoder.config._attn_implementation == before
    assert sum(type(m) is nn.Dropout for m in model.modules()) == n_dropout
    assert not any(type(m) is kernels.Dropout for m in model.modules())


def test_kernels_are_left_alone_off_the_cpu():
    model = _classifier()
    with kernels.cpu_kernels(model, torch.device("cuda")):     # no GPU needed: nothing is run
        assert not any(type(m) is kernels.Dropout for m in model.modules())
        assert model.encoder.config._attn_implementation == "sdpa"


def test_swapped_dropouts_keep_eval_mode():
    model = _classifier().eval()
    ids, mask = _batch()
    with torch.no_grad():
        reference = model(ids, mask)
        with kernels.cpu_kernels(model, torch.device("cpu")):
            assert not any(m.training for m in model.modules())
        assert torch.equal(model(ids, mask), reference)
