"""The modulated convolution's two ways agree: fused (per-image weights, one grouped convolution) and the
training way (scaled activations around one shared convolution, its demodulation coefficients computed as
Σ_i s_i² Σ_k w_oik² without the N x O x I x k x k weights), in values and in gradients."""

import pytest
import torch

from gankit.nn.modulated import modulated_conv2d


@pytest.mark.parametrize("up, demodulate", [(1, True), (2, True), (1, False)])
def test_fused_and_unfused_agree_in_values_and_gradients(up, demodulate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 5, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(3, 5, generator=g, dtype=torch.float64).add(1).requires_grad_(True)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) if up > 1 else None
    outs = [modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, demodulate=demodulate,
                             fused=fused) for fused in (True, False)]
    assert torch.allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad(o.square().sum(), (x, weight, styles)) for o in outs]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_demodulation_is_the_papers():
    """y = conv(x, w''), w''_oik = s_i w_oik / √(Σ_ik (s_i w_oik)² + ε), per image."""
    g = torch.Generator().manual_seed(1)
    x, weight, styles = torch.randn(2, 3, 6, 6, generator=g), torch.randn(4, 3, 3, 3, generator=g), \
        torch.rand(2, 3, generator=g) + 0.5
    out = modulated_conv2d(x, weight, styles, padding=1, fused=False)
    for i in range(2):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        assert torch.allclose(out[i], torch.nn.functional.conv2d(x[i:i + 1], w, padding=1)[0], atol=1e-5)
