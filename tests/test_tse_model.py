"""TseNet: paper configuration and parameter count, conditioning variants, speaker logits, save / load."""
from __future__ import annotations

import warnings

import pytest
import torch

from sepaudio.losses import create_loss
from sepaudio.models import TseNet, create_model, load_model
from sepaudio.nn import TCNConfig

TINY = dict(n_filters=16, tcn=dict(channels=16, hidden=32, skip_channels=16, blocks=2, repeats=2))


def paper_parameter_count(n=256, kernel=20, b=256, h=512, sc=256, p=3, x=8, r=4, ivector=400, speaker=100) -> int:
    """TseNet's parameters counted from the architecture, layer by layer."""
    encoder = decoder = n * kernel  # free filterbanks, no bias
    masker = 2 * n + (n * b + b)  # input gLN, bottleneck 1x1
    for stack in range(r):
        for block in range(x):
            c_in = b + speaker if block == 0 else b  # the speaker vector is concatenated at each stack's first block
            last = stack == r - 1 and block == x - 1
            masker += (c_in * h + h) + 1 + 2 * h + (h * p + h) + 1 + 2 * h + (h * sc + sc)
            masker += 0 if last else h * b + b  # the last block has no residual output
    masker += 1 + (sc * n + n)  # PReLU, 1x1 to the mask
    return encoder + decoder + masker + (ivector * speaker + speaker)  # Linear(400 -> 100)


def test_paper_configuration_is_the_default_and_counts_its_parameters():
    model = TseNet()
    args = model.model_args
    assert (args["n_filters"], args["filter_length"], args["ivector_dim"], args["speaker_dim"]) == (256, 20, 400, 100)
    assert model.masker.tcn.config == TCNConfig(channels=256, hidden=512, skip_channels=256, kernel_size=3, blocks=8,
                                                repeats=4)
    assert TseNet(tcn={"repeats": 2}).masker.tcn.config == TCNConfig(channels=256, skip_channels=256, repeats=2)
    assert args["fusion"] == "concat" and args["conditioning"] == "ivector" and model.sample_rate == 8000
    assert model.num_parameters == paper_parameter_count() == 13_002_725


@pytest.mark.parametrize("fusion", ["concat", "add", "multiply", "film"])
def test_ivector_conditioning_shapes(fusion):
    model = TseNet(ivector_dim=12, speaker_dim=8, fusion=fusion, **TINY).eval()
    assert model.input_keys == ("mixture", "ivector")
    mixture, ivector = torch.randn(3, 1000), torch.randn(3, 12)
    assert model(mixture, ivector).shape == (3, 1, 1000)
    assert model(mixture[0], ivector[0]).shape == (1, 1000)


def test_output_depends_on_the_speaker_vector():
    model = TseNet(ivector_dim=12, speaker_dim=8, **TINY).eval()
    mixture = torch.randn(1, 800)
    a, b = model(mixture, torch.randn(1, 12)), model(mixture, torch.randn(1, 12))
    assert (a - b).abs().max() > 1e-4


def test_encoder_conditioning_returns_logits_only_in_training():
    model = TseNet(conditioning="encoder", speaker_dim=8, speaker_channels=16, speaker_blocks=2, n_speakers=5,
                   **TINY)
    assert model.input_keys == ("mixture", "enrollment")
    mixture, enrollment = torch.randn(2, 1000), torch.randn(2, 1500)
    model.train()
    estimate, logits = model(mixture, enrollment)
    assert estimate.shape == (2, 1, 1000) and logits.shape == (2, 5)
    batch = {"target": torch.randn(2, 1000), "speaker": torch.tensor([1, 3])}
    loss = create_loss("si_sdr_speaker", weight=0.5)
    value, logs = loss((estimate, logits), batch)
    assert set(logs) == {"si_sdr", "speaker_ce"}
    assert torch.isclose(value, -logs["si_sdr"] + 0.5 * logs["speaker_ce"])
    value.backward()
    assert model.classifier.weight.grad is not None and model.speaker_net.output.weight.grad.abs().sum() > 0
    model.eval()
    out = model(mixture, enrollment)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1, 1000)
    assert set(loss(out, batch)[1]) == {"si_sdr"}
    # any enrollment length, unbatched too
    assert model(mixture[0], torch.randn(4321)).shape == (1, 1000)


def test_encoder_conditioning_emits_no_warning():
    """The enrollment reaches the asteroid encoder as (batch, 1, time): no 2-D input UserWarning."""
    model = TseNet(conditioning="encoder", speaker_dim=8, speaker_channels=8, speaker_blocks=1, **TINY).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.randn(2, 800), torch.randn(2, 900))
        model(torch.randn(800), torch.randn(900))


def test_extract_with_precomputed_embedding_equals_forward():
    model = TseNet(ivector_dim=12, speaker_dim=8, **TINY).eval()
    mixture, ivector = torch.randn(2, 900), torch.randn(2, 12)
    torch.testing.assert_close(model.extract_embedded(mixture, model.embed(ivector)), model(mixture, ivector))


def test_save_load_round_trip(tmp_path):
    model = create_model("tsenet", conditioning="encoder", speaker_dim=8, speaker_channels=16, speaker_blocks=1,
                         fusion="film", **TINY).eval()
    path = model.save(tmp_path / "tse.pt")
    loaded = load_model(path, expected=TseNet)
    mixture, enrollment = torch.randn(1, 700), torch.randn(1, 900)
    torch.testing.assert_close(loaded(mixture, enrollment), model(mixture, enrollment))
    assert loaded.input_keys == ("mixture", "enrollment")


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="conditioning"):
        TseNet(conditioning="xvector", **TINY)
    with pytest.raises(ValueError, match="n_speakers"):
        TseNet(conditioning="ivector", n_speakers=4, **TINY)
    with pytest.raises(ValueError, match="fusion"):
        TseNet(fusion="gate", **TINY)
    with pytest.raises(ValueError, match="fuse_at"):
        TseNet(fuse_at="layer", **TINY)


@pytest.mark.parametrize("fusion", ["concat", "film"])
def test_fusion_at_every_block(fusion):
    """``fuse_at="block"`` feeds the speaker vector to every TCN block, not only to the first of each stack."""
    stack = TseNet(ivector_dim=12, speaker_dim=8, fusion=fusion, **TINY).eval()
    every = TseNet(ivector_dim=12, speaker_dim=8, fusion=fusion, fuse_at="block", **TINY).eval()
    n_blocks = len(every.masker.tcn.blocks)
    assert len(stack.masker.tcn.fusions) == TINY["tcn"]["repeats"] and len(every.masker.tcn.fusions) == n_blocks
    assert every.masker.tcn.fusion_of == list(range(n_blocks))
    assert stack.masker.tcn.fusion_of == [0, -1, 1, -1]
    width = TINY["tcn"]["channels"] + (8 if fusion == "concat" else 0)  # a concat block takes the vector as channels
    assert [b.in_conv.in_channels for b in every.masker.tcn.blocks] == [width] * n_blocks
    mixture, ivector = torch.randn(2, 1000), torch.randn(2, 12)
    assert every(mixture, ivector).shape == (2, 1, 1000)
    assert (every(mixture, ivector) - every(mixture, torch.randn(2, 12))).abs().max() > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("conf", ["conf.yml", "conf_encoder.yml"])
def test_recipe_configs_train(conf, mini_speech, tmp_path):
    """Both conditionings train through ``sepaudio train`` as the tse_mini configs describe them (two steps)."""
    from pathlib import Path

    from sepaudio.data import scan_speakers
    from sepaudio.speaker import train_ivector_extractor
    from sepaudio import audio
    from sepaudio.train import load_config, train

    speakers = sorted(scan_speakers(mini_speech))
    overrides = [f"exp_dir={tmp_path / 'exp'}", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                 "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
                 "trainer.log_every_n_steps=1", "data.num_workers=0",
                 "data.batch_size=2", "model.args.n_filters=16", "model.args.tcn.channels=8",
                 "model.args.tcn.hidden=16", "model.args.tcn.skip_channels=8", "model.args.tcn.blocks=2"]
    for split in ("train", "valid"):
        overrides += [f"data.{split}.root={mini_speech}", f"data.{split}.speakers={speakers}",
                      f"data.{split}.length=4"]
    if conf == "conf.yml":
        wavs = [audio.load(p)[0][0] for ps in scan_speakers(mini_speech).values() for p in ps]
        extractor = train_ivector_extractor(wavs, 8000, n_components=4, rank=10, tv_iterations=1, progress=False)
        extractor.save(tmp_path / "iv.pt")
        overrides += [f"data.{split}.extractor={tmp_path / 'iv.pt'}" for split in ("train", "valid")]
    else:
        overrides += ["model.args.n_speakers=4", "model.args.speaker_channels=8"]
    config = load_config(Path(__file__).resolve().parents[1] / "recipes" / "tse_mini" / conf, overrides)
    exp = train(config)
    model = load_model(exp / "model.pt", expected=TseNet)
    assert model.conditioning == ("ivector" if conf == "conf.yml" else "encoder")
    metrics = (exp / "logs" / "metrics.csv").read_text()
    assert "val_loss" in metrics and ("train_speaker_ce" in metrics) == (conf == "conf_encoder.yml")
    if conf == "conf_encoder.yml":  # a classifier over another number of speakers than the data has
        from sepaudio.errors import ConfigError

        recipe = Path(__file__).resolve().parents[1] / "recipes" / "tse_mini" / conf
        wrong = overrides + ["model.args.n_speakers=5", f"exp_dir={tmp_path / 'exp2'}",
                             "data.train.speed_factors=[0.9,1.0]"]
        with pytest.raises(ConfigError, match="n_speakers: 5, but data.train has 8 speakers .*n_speakers: 8"):
            train(load_config(recipe, wrong))
