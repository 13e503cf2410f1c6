"""``model.init_from``: a TseNet whose encoder, TCN and decoder come from a trained blind separator; mismatched
separators refused naming the tensors."""
from __future__ import annotations

import pytest
import torch
import yaml

from sepaudio import load_model
from sepaudio.config import load_config
from sepaudio.errors import ConfigError, ModelFileError
from sepaudio.models import ConvTasNet, MiTAS, TseNet
from sepaudio.train.run import build
from sepaudio.train.warmstart import init_from_separator

TCN = dict(channels=8, hidden=16, skip_channels=8, blocks=2, repeats=1)
SIZE = dict(n_filters=16, filter_length=16, tcn=TCN)


@pytest.mark.parametrize("family", [ConvTasNet, MiTAS])
def test_the_extractor_starts_from_the_separator(family, tmp_path):
    blind = family(**SIZE) if family is MiTAS else family(n_src=2, **SIZE)
    blind.save(tmp_path / "blind.pt")
    model = TseNet(ivector_dim=4, speaker_dim=4, fusion="film", fuse_at="block", **SIZE)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    copied = init_from_separator(model, tmp_path / "blind.pt")
    ours, theirs = model.state_dict(), blind.state_dict()
    assert set(copied) == set(theirs)
    for name, tensor in theirs.items():
        want = tensor[:ours[name].shape[0]] if name.startswith("masker.output_conv.") else tensor
        torch.testing.assert_close(ours[name], want, msg=name)
    for name in ours:  # the speaker branch and the fusion layers keep their fresh weights
        if name not in theirs:
            torch.testing.assert_close(ours[name], fresh[name])
    assert any(k.startswith("masker.tcn.fusions.") for k in ours if k not in theirs)


def test_concatenation_fusion_starts_as_the_separator(tmp_path):
    torch.manual_seed(0)
    blind = ConvTasNet(n_src=2, **SIZE).eval()
    blind.save(tmp_path / "blind.pt")
    model = TseNet(ivector_dim=4, speaker_dim=4, fusion="concat", fuse_at="stack", **SIZE).eval()
    init_from_separator(model, tmp_path / "blind.pt")
    mixture = torch.randn(1, 4000)
    with torch.no_grad():
        torch.testing.assert_close(model(mixture, torch.randn(1, 4))[:, 0], blind(mixture)[:, 0])


def test_a_separator_of_another_size_is_refused_naming_the_tensors(tmp_path):
    ConvTasNet(n_src=2, n_filters=16, filter_length=16, tcn={**TCN, "hidden": 24}).save(tmp_path / "wide.pt")
    model = TseNet(ivector_dim=4, speaker_dim=4, fusion="film", **SIZE)
    with pytest.raises(ConfigError, match=r"wide\.pt.*masker\.tcn\..*\(24, 8, 1\) vs \(16, 8, 1\)"):
        init_from_separator(model, tmp_path / "wide.pt")
    ConvTasNet(n_src=2, n_filters=16, filter_length=16, tcn={**TCN, "blocks": 3}).save(tmp_path / "deep.pt")
    with pytest.raises(ConfigError, match=r"the extractor has none"):
        init_from_separator(model, tmp_path / "deep.pt")
    model.save(tmp_path / "tse.pt")
    with pytest.raises(ModelFileError, match="blind separation"):
        init_from_separator(TseNet(ivector_dim=4, speaker_dim=4, **SIZE), tmp_path / "tse.pt")


def test_build_applies_model_init_from(mini_speech, tmp_path):
    ConvTasNet(n_src=2, **SIZE).save(tmp_path / "blind.pt")
    data = dict(root=str(mini_speech), enrollment=True, segment=0.5, enrollment_seconds=0.5, length=2)
    config = {"exp_dir": str(tmp_path / "exp"), "loss": {"name": "si_sdr"},
              "model": {"name": "tsenet", "init_from": str(tmp_path / "blind.pt"),
                        "args": {"conditioning": "encoder", "speaker_dim": 4, "speaker_channels": 8,
                                 "speaker_blocks": 1, **SIZE}},
              "data": {"name": "mix_on_the_fly", "train": data, "valid": data, "batch_size": 2, "num_workers": 0}}
    (tmp_path / "c.yml").write_text(yaml.safe_dump(config))
    model = build(load_config(tmp_path / "c.yml"))[0]
    blind = load_model(tmp_path / "blind.pt")
    for part in ("encoder", "decoder"):
        for name, tensor in getattr(blind, part).state_dict().items():
            torch.testing.assert_close(getattr(model, part).state_dict()[name], tensor)
    config["model"]["init_from"] = str(tmp_path / "none.pt")
    (tmp_path / "c.yml").write_text(yaml.safe_dump(config))
    with pytest.raises(ModelFileError, match="none.pt"):
        build(load_config(tmp_path / "c.yml"))
