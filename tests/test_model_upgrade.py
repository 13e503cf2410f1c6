"""Model files of format 1 (flat TCN arguments, see tests/fixtures/make_v1_models.py) load and give the same output
(to float rounding: the sums run in another order with another number of threads)."""
from pathlib import Path

import pytest
import torch

from sepaudio.models import ConvTasNet, MiTAS, TseNet, load_model
from sepaudio.models.base import FORMAT_VERSION

FIXTURES = Path(__file__).parent / "fixtures"
KINDS = {"conv_tasnet": ConvTasNet, "mitas": MiTAS, "tsenet_ivector": TseNet, "tsenet_encoder": TseNet,
         "conv_tasnet_train": ConvTasNet}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_format_1_files_load_and_give_the_recorded_output(name, tmp_path):
    path = FIXTURES / (f"{name}.ckpt" if name.endswith("_train") else f"{name}.pt")
    recorded = torch.load(FIXTURES / "v1_outputs.pt", weights_only=True)[name]
    model = load_model(path)
    assert type(model) is KINDS[name]
    assert "tcn" in model.model_args and "filter_length" in model.model_args and "bottleneck" not in model.model_args
    with torch.no_grad():
        torch.testing.assert_close(model(*recorded["inputs"]), recorded["output"], rtol=0, atol=1e-5)
    again = load_model(model.save(tmp_path / "v2.pt"))  # written again in the current format
    assert torch.load(tmp_path / "v2.pt", weights_only=True)["sepaudio_format"] == FORMAT_VERSION == 2
    with torch.no_grad():
        torch.testing.assert_close(again(*recorded["inputs"]), recorded["output"], rtol=0, atol=1e-5)


def test_upgrade_maps_every_flat_name():
    old = dict(n_src=2, kernel_size=16, bottleneck=64, hidden=128, skip_channels=32, conv_kernel=5, blocks=4,
               repeats=2, norm="cLN", causal=True, share="depthwise", mask_act="relu")
    assert ConvTasNet.upgrade_args(old, 1) == dict(
        n_src=2, filter_length=16, mask_act="relu", tcn=dict(channels=64, hidden=128, skip_channels=32, kernel_size=5,
                                                              blocks=4, repeats=2, norm="cLN", causal=True,
                                                              share="depthwise"))
    new = {"filter_length": 16, "tcn": {"channels": 8}}
    assert ConvTasNet.upgrade_args(new, 2) == new
