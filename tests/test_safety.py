"""Nothing a user gives loses data or ends in a traceback.

``test_bad_input_is_refused`` drives the real command line (in-process, through :func:`sepaudio.cli.main`) over a
generated table of bad or hostile inputs: every case must exit with status 2, name the file or option at fault,
print no traceback, leave every input unchanged and write nothing at all. The other tests cover what a table of
refusals cannot: the Python API's error types, signals, file permissions, non-UTF-8 names, cut-off WAV files and
formats that would clip.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sepaudio import audio
from sepaudio.cli import main
from sepaudio.data import make_mini_speech_corpus
from sepaudio.errors import AudioError, ConfigError, DatasetError, ModelFileError, OutputError, SepaudioError
from sepaudio.models import ConvTasNet, TseNet, create_model, load_model
from sepaudio.speaker import train_ivector_extractor

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, on the hostile files
RATE = 8000
TCN = dict(channels=8, hidden=16, skip_channels=8, blocks=2, repeats=1)
SEP_ARGS = dict(n_src=2, n_filters=16, filter_length=16, tcn=TCN)
TSE_ARGS = dict(n_filters=16, filter_length=16, stride=8, speaker_dim=8, tcn=TCN)


class Evil:
    """Pickles to a call of ``os.system``: a file that runs code when loaded unsafely."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """``sepaudio train`` sets torch's thread count for its data workers; the table runs it in this process."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def noise(seconds: float, level: float = 0.1, seed: int = 0) -> torch.Tensor:
    return level * torch.randn(int(seconds * RATE), generator=torch.Generator().manual_seed(seed))


def loud(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its decoder scaled so that its outputs pass full scale."""
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(1000.0)
    return model


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Every input the table uses: tiny models of each kind, audio good and bad, model files bad and hostile,
    configs and a training run's folder. Nothing in it may change."""
    root = tmp_path_factory.mktemp("world")
    torch.manual_seed(0)
    ConvTasNet(**SEP_ARGS).save(root / "sep.pt")
    TseNet(conditioning="encoder", **TSE_ARGS).save(root / "tse.pt")
    TseNet(ivector_dim=4, **TSE_ARGS).save(root / "tse_iv.pt")
    loud(TseNet(conditioning="encoder", **TSE_ARGS)).save(root / "tse_loud.pt")
    causal = dict(TSE_ARGS, tcn={**TCN, "causal": True, "norm": "cLN"})
    loud(TseNet(conditioning="encoder", **causal)).save(root / "tse_causal_loud.pt")
    broken = TseNet(conditioning="encoder", **causal)
    with torch.no_grad():
        next(broken.decoder.parameters()).fill_(float("nan"))
    broken.save(root / "tse_nan.pt")
    create_model("swishnet_slim", sample_rate=RATE).save(root / "cls.pt")
    make_mini_speech_corpus(root / "speakers", n_speakers=3, utterances=3, seconds=0.5, sample_rate=RATE, seed=0)
    wavs = [audio.load(p)[0][0] for p in sorted((root / "speakers").rglob("*.wav"))]
    for rank, name in ((4, "iv.pt"), (3, "iv3.pt")):
        train_ivector_extractor(wavs, RATE, n_components=2, rank=rank, tv_iterations=1, ubm_iterations=1,
                                progress=False).save(root / name)

    audio.save(root / "mix.wav", noise(1.0), RATE)
    audio.save(root / "enroll.wav", noise(1.0, seed=1), RATE)
    audio.save(root / "silent.wav", torch.zeros(RATE), RATE)
    audio.save(root / "one_sample.wav", torch.full((1,), 0.1), RATE)
    sf.write(root / "nan.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), RATE, subtype="FLOAT")
    audio.save(root / "stereo.wav", torch.stack([noise(0.5), noise(0.5, seed=2)]), RATE)
    audio.save(root / "empty.wav", torch.zeros(0), RATE)
    (root / "zero_bytes.wav").write_bytes(b"")
    (root / "text.wav").write_text("not audio\n")
    sf.write(root / "huge_header.flac", np.zeros(800, np.float32), RATE)
    flac = bytearray((root / "huge_header.flac").read_bytes())  # STREAMINFO's 36-bit sample count: 2**36 - 1
    flac[21:26] = bytes([flac[21] | 0x0F, 0xFF, 0xFF, 0xFF, 0xFF])
    (root / "huge_header.flac").write_bytes(bytes(flac))
    (root / "mixlink.wav").symlink_to(root / "mix.wav")
    (root / "no_audio").mkdir()
    (root / "no_audio" / "readme.txt").write_text("nothing to hear\n")
    (root / "a_file").write_text("a file where a folder belongs\n")
    (root / "out").mkdir()  # every output of the table goes here
    (root / "out_is_dir.wav").mkdir()
    # separating a folder into itself: mix_s1.wav is an input and, later, an output of mix.wav
    for name in ("sepdir", "a", "b"):
        (root / name).mkdir()
    audio.save(root / "sepdir" / "mix.wav", noise(0.5), RATE)
    audio.save(root / "sepdir" / "mix_s1.wav", noise(0.5, seed=3), RATE)
    audio.save(root / "a" / "x.wav", noise(0.5), RATE)
    audio.save(root / "b" / "x.wav", noise(0.5, seed=4), RATE)

    # model files: damaged, foreign, with wrong fields, hostile
    good = (root / "sep.pt").read_bytes()
    (root / "truncated.pt").write_bytes(good[:len(good) // 2])
    (root / "garbage.pt").write_bytes(bytes(range(256)) * 8)
    torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
    record = torch.load(root / "sep.pt", weights_only=True)
    torch.save({k: v for k, v in record.items() if k != "state_dict"}, root / "no_weights.pt")
    torch.save({**record, "model_args": {"bogus": 1}}, root / "bad_args.pt")
    torch.save({**record, "model_args": "n_src=2"}, root / "args_not_dict.pt")
    torch.save({**record, "model": "no_such_net"}, root / "unknown_model.pt")
    torch.save({**record, "state_dict": {"encoder.weight": torch.zeros(2)}}, root / "bad_weights.pt")
    torch.save({**record, "sepaudio_format": 99}, root / "future.pt")
    torch.save({**record, "model_args": {**record["model_args"], "sample_rate": 0}}, root / "rate_zero.pt")
    with zipfile.ZipFile(root / "plain_zip.pt", "w") as archive:
        archive.writestr("notes/readme.txt", "a zip, but not a torch file\n")
    with open(root / "evil.pt", "wb") as f:
        pickle.dump(Evil(root / "PWNED"), f)
    torch.save(Evil(root / "PWNED"), root / "evil_torch.pt")

    # lists
    (root / "jobs_escape.txt").write_text("mix.wav enroll.wav ../../escaped.wav\n")
    (root / "jobs_abs.txt").write_text(f"mix.wav enroll.wav {root / 'absolute.wav'}\n")
    (root / "jobs_same.txt").write_text("mix.wav enroll.wav same.wav\nenroll.wav mix.wav same.wav\n")
    (root / "jobs_missing.txt").write_text("mix.wav nowhere.wav\n")
    (root / "jobs_short.txt").write_text("mix.wav\n")
    (root / "listdir").mkdir()
    audio.save(root / "listdir" / "m1.wav", noise(0.5), RATE)
    audio.save(root / "listdir" / "m2.wav", noise(0.5, seed=5), RATE)
    (root / "listdir" / "jobs.txt").write_text("m1.wav ../enroll.wav m2.wav\nm2.wav ../enroll.wav out2.wav\n")
    (root / "wavs.txt").write_text("".join(f"{p} spk{i % 3}\n" for i, p in
                                           enumerate(sorted((root / "speakers").rglob("*.wav")))))
    (root / "wavs_missing.txt").write_text("nowhere.wav\n")
    (root / "self_list.txt").write_text(f"{root / 'mix.wav'}\n@{root / 'self_list.txt'}\n")
    # ESC-50 metadata, damaged three ways (the audio is never reached)
    header = "filename,fold,target,category,esc10,src_file,take\n"
    for name, text in (("esc_columns", "filename,fold,category\n1-1-A-0.wav,1,dog\n"),
                       ("esc_fold", header + "1-1-A-0.wav,one,0,dog,True,1,A\n"),
                       ("esc_target", header + "1-1-A-0.wav,1,0,dog,True,1,A\n2-2-A-1.wav,2,rain,rain,False,2,A\n")):
        (root / name / "meta").mkdir(parents=True)
        (root / name / "meta" / "esc50.csv").write_text(text)

    # training: a config, and a run of it with a checkpoint of a smaller model
    (root / "conf.yml").write_text(
        f"exp_dir: {root / 'exp'}\nmodel: {{name: conv_tasnet, args: {SEP_ARGS}}}\n"
        f"data: {{name: mix_on_the_fly, batch_size: 2, train: {{root: {root / 'speakers'}, segment: 0.25, length: 4}},"
        f" valid: {{root: {root / 'speakers'}, segment: 0.25, length: 2, seed: 0}}}}\n"
        f"loss: {{name: pit_si_sdr}}\ntrainer: {{max_epochs: 1, accelerator: cpu}}\n")
    (root / "bad.yml").write_text("model: {name: conv_tasnet\n  args: [\n")
    (root / "evil.yml").write_text(f"model: !!python/object/apply:os.system ['touch {root / 'PWNED'}']\n")
    for run, name in (("exp", "conv_tasnet"), ("exp_corrupt", None)):
        (root / run / "checkpoints").mkdir(parents=True)
        (root / run / "config.yaml").write_text("# the run's config: must survive a refused resume\n")
        last = root / run / "checkpoints" / "last.ckpt"
        if name is None:
            last.write_bytes(b"PK\x03\x04 not a checkpoint")
            continue
        model = ConvTasNet(**SEP_ARGS)
        torch.save({"sepaudio_model": {k: v for k, v in model.serialize().items() if k != "state_dict"},
                    "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "global_step": 4},
                   last)
    (root / "conf_corrupt.yml").write_text((root / "conf.yml").read_text().replace(
        f"exp_dir: {root / 'exp'}", f"exp_dir: {root / 'exp_corrupt'}"))
    return root


def _cases(w: Path) -> list[tuple[str, list[str], list[str]]]:
    """``(id, argv, words the error must name)`` for every bad input."""
    sep = ["separate", "--model", str(w / "sep.pt")]
    ext = ["extract", "--model", str(w / "tse.pt"), "--mixture", str(w / "mix.wav"), "--enroll", str(w / "enroll.wav")]
    ext_iv = ["extract", "--model", str(w / "tse_iv.pt"), "--ivector-model", str(w / "iv.pt"),
              "--mixture", str(w / "mix.wav"), "--enroll", str(w / "enroll.wav"), "-o", str(w / "out" / "e.wav")]
    lst = ["extract", "--model", str(w / "tse.pt"), "-o", str(w / "out"), "--list"]
    cls = ["classify", "--model", str(w / "cls.pt"), str(w / "mix.wav")]
    seg = ["segment", "--model", str(w / "cls.pt"), str(w / "mix.wav"), "-o", str(w / "out")]
    ivt = ["ivector", "train", "--wavs", str(w / "wavs.txt"), "--out", str(w / "out" / "iv.pt"), "--components", "2",
           "--rank", "2", "--device", "cpu"]
    tr = ["train", str(w / "conf.yml")]
    out = ["-o", str(w / "out")]
    mix = str(w / "mix.wav")
    cases = [
        # data safety: outputs that are inputs, outputs that collide, outputs that leave -o
        ("separate-into-its-own-folder", [*sep, str(w / "sepdir"), "-o", str(w / "sepdir")], ["mix_s1.wav", "input"]),
        ("separate-same-file-twice", [*sep, mix, mix, *out], ["two outputs"]),
        ("extract-out-is-mixture", [*ext, "-o", mix], ["mix.wav", "input"]),
        ("extract-out-is-enrollment", [*ext, "-o", str(w / "enroll.wav")], ["enroll.wav", "input"]),
        ("extract-out-links-to-mixture", [*ext, "-o", str(w / "mixlink.wav")], ["mixlink.wav", "input"]),
        ("extract-list-escapes-out", [*lst, str(w / "jobs_escape.txt")], ["escaped.wav", "outside"]),
        ("extract-list-absolute-out", [*lst, str(w / "jobs_abs.txt")], ["absolute.wav", "outside"]),
        ("extract-list-same-out-twice", [*lst, str(w / "jobs_same.txt")], ["same.wav", "two outputs"]),
        ("extract-list-out-is-later-input", ["extract", "--model", str(w / "tse.pt"), "-o", str(w / "listdir"),
                                             "--list", str(w / "listdir" / "jobs.txt")], ["m2.wav", "input"]),
        ("extract-flac-would-clip", ["extract", "--model", str(w / "tse_loud.pt"), "--mixture", mix, "--enroll",
                                     str(w / "enroll.wav"), "-o", str(w / "out" / "e.flac")], ["e.flac", "full scale"]),
        ("extract-out-is-folder", [*ext, "-o", str(w / "out_is_dir.wav")], ["out_is_dir.wav", "folder"]),
        ("extract-out-unknown-format", [*ext, "-o", str(w / "out" / "e.xyz")], ["e.xyz"]),
        ("separate-out-is-file", [*sep, mix, "-o", str(w / "a_file")], ["a_file", "not a folder"]),
        ("segment-out-is-file", [*seg[:-1], str(w / "a_file")], ["a_file", "not a folder"]),
        ("segment-same-stem-twice", [*seg[:3], str(w / "a" / "x.wav"), str(w / "b" / "x.wav"), *out],
         ["x.csv", "two outputs"]),
        ("ivector-train-out-is-list", [*ivt[:4], "--out", str(w / "wavs.txt"), *ivt[6:]], ["wavs.txt", "input"]),
        # resuming a run with another model, or from a damaged checkpoint
        ("resume-other-size", [*tr, "model.args.n_filters=32"], ["last.ckpt", "model.args.n_filters"]),
        ("resume-other-model", [*tr, "model.name=mitas"], ["last.ckpt", "conv_tasnet", "mitas"]),
        ("resume-other-tcn", [*tr, "model.args.tcn.hidden=32"], ["last.ckpt", "model.args.tcn"]),
        ("resume-corrupt-checkpoint", ["train", str(w / "conf_corrupt.yml")], ["last.ckpt"]),
        # configs
        ("config-unknown-section", [*tr, "trainr.max_epochs=50"], ["trainr", "trainer"]),
        ("config-unknown-optim-key", [*tr, "optim.lrr=0.1"], ["optim.lrr", "optim.lr"]),
        ("config-unknown-data-key", [*tr, "data.bach_size=8"], ["data.bach_size", "data.batch_size"]),
        ("config-unknown-trainer-key", [*tr, "trainer.max_epoch=3"], ["trainer.max_epoch", "trainer.max_epochs"]),
        ("config-unknown-model-key", [*tr, "model.arg.n_src=3"], ["model.arg", "model.args"]),
        ("config-batch-size-zero", [*tr, "data.batch_size=0"], ["data.batch_size"]),
        ("config-batch-size-negative", [*tr, "data.batch_size=-2"], ["data.batch_size"]),
        ("config-batch-size-float", [*tr, "data.batch_size=2.5"], ["data.batch_size"]),
        ("config-lr-zero", [*tr, "optim.lr=0"], ["optim.lr"]),
        ("config-lr-negative", [*tr, "optim.lr=-1e-3"], ["optim.lr"]),
        ("config-lr-nan", [*tr, "optim.lr=.nan"], ["optim.lr"]),
        ("config-lr-text", [*tr, "optim.lr=fast"], ["optim.lr"]),
        ("config-segment-negative", [*tr, "data.train.segment=-1"], ["data.train.segment"]),
        ("config-workers-negative", [*tr, "data.num_workers=-1"], ["data.num_workers"]),
        ("config-plateau-factor", [*tr, "optim.plateau_factor=1.5"], ["optim.plateau_factor"]),
        ("config-max-epochs-zero", [*tr, "trainer.max_epochs=0"], ["trainer.max_epochs"]),
        ("config-unknown-accelerator", [*tr, "trainer.accelerator=banana"], ["trainer", "banana"]),
        ("config-devices-zero", [*tr, "trainer.devices=0"], ["trainer", "devices"]),
        ("config-section-not-a-mapping", [*tr, "optim=fast"], ["optim"]),
        ("config-tcn-unknown-field", [*tr, "model.args.tcn.chanels=8"], ["model", "chanels"]),
        ("config-tcn-bad-value", [*tr, "model.args.tcn.channels=0"], ["model", "channels"]),
        ("config-model-unknown-arg", [*tr, "model.args.n_srcs=3"], ["model", "n_srcs"]),
        ("config-override-without-value", [*tr, "optim.lr"], ["optim.lr"]),
        ("config-missing-file", ["train", str(w / "nowhere.yml")], ["nowhere.yml"]),
        ("config-invalid-yaml", ["train", str(w / "bad.yml")], ["bad.yml"]),
        ("config-yaml-runs-code", ["train", str(w / "evil.yml")], ["evil.yml"]),
        # model files
        ("model-missing", ["info", str(w / "nowhere.pt")], ["nowhere.pt"]),
        ("model-garbage", ["info", str(w / "garbage.pt")], ["garbage.pt"]),
        ("model-truncated", [*sep[:2], str(w / "truncated.pt"), mix, *out], ["truncated.pt"]),
        ("model-foreign", ["info", str(w / "foreign.pt")], ["foreign.pt"]),
        ("model-no-weights", [*sep[:2], str(w / "no_weights.pt"), mix, *out], ["no_weights.pt", "state_dict"]),
        ("model-bad-args", [*sep[:2], str(w / "bad_args.pt"), mix, *out], ["bad_args.pt", "bogus"]),
        ("model-args-not-a-dict", [*sep[:2], str(w / "args_not_dict.pt"), mix, *out],
         ["args_not_dict.pt", "model_args"]),
        ("model-unknown-name", [*sep[:2], str(w / "unknown_model.pt"), mix, *out], ["unknown_model.pt", "no_such_net"]),
        ("model-bad-weights", [*sep[:2], str(w / "bad_weights.pt"), mix, *out], ["bad_weights.pt"]),
        ("model-from-the-future", [*sep[:2], str(w / "future.pt"), mix, *out], ["future.pt", "newer"]),
        ("model-pickle-runs-code", ["info", str(w / "evil.pt")], ["evil.pt"]),
        ("model-torch-pickle-runs-code", [*sep[:2], str(w / "evil_torch.pt"), mix, *out], ["evil_torch.pt"]),
        ("model-is-a-config", ["info", str(w / "conf.yml")], ["conf.yml"]),
        ("separate-with-classifier", [*sep[:2], str(w / "cls.pt"), mix, *out], ["cls.pt", "swishnet"]),
        ("separate-with-extractor", [*sep[:2], str(w / "tse.pt"), mix, *out], ["tse.pt", "extract"]),
        ("extract-with-separator", ["extract", "--model", str(w / "sep.pt"), *ext[3:], "-o", str(w / "out" / "e.wav")],
         ["sep.pt", "tsenet"]),
        ("classify-with-separator", ["classify", "--model", str(w / "sep.pt"), mix], ["sep.pt"]),
        ("evaluate-classifier-on-separation", ["evaluate", str(w / "conf.yml"), "--split", "valid", "--model",
                                               str(w / "cls.pt"), *out], ["cls.pt", "swishnet"]),
        ("evaluate-unknown-split", ["evaluate", str(w / "conf.yml"), "--split", "nosuch", *out], ["data.nosuch"]),
        ("ivector-model-corrupt", [*ext_iv[:4], str(w / "garbage.pt"), *ext_iv[5:]], ["garbage.pt"]),
        ("ivector-model-is-sepaudio-model", [*ext_iv[:4], str(w / "sep.pt"), *ext_iv[5:]], ["sep.pt"]),
        ("ivector-model-wrong-dim", [*ext_iv[:4], str(w / "iv3.pt"), *ext_iv[5:]], ["iv3.pt", "4-dim"]),
        ("ivector-model-missing", [*ext_iv[:3], *ext_iv[5:]], ["--ivector-model"]),
        ("ivector-extract-corrupt", ["ivector", "extract", "--model", str(w / "garbage.pt"), "--wavs",
                                     str(w / "wavs.txt"), "--out", str(w / "out"), "--device", "cpu"], ["garbage.pt"]),
        # audio inputs
        ("input-missing", [*sep, str(w / "nowhere.wav"), *out], ["nowhere.wav"]),
        ("input-not-audio", [*sep, str(w / "text.wav"), *out], ["text.wav"]),
        ("input-no-samples", [*sep, str(w / "empty.wav"), *out], ["empty.wav"]),
        ("input-zero-bytes", [*sep, str(w / "zero_bytes.wav"), *out], ["zero_bytes.wav"]),
        ("input-nan", ["classify", "--model", str(w / "cls.pt"), str(w / "nan.wav")], ["nan.wav", "NaN"]),
        ("input-folder-without-audio", [*sep, str(w / "no_audio"), *out], ["no_audio"]),
        ("input-list-missing", [*sep, "@" + str(w / "nowhere.txt"), *out], ["nowhere.txt"]),
        ("enroll-silent", [*ext[:-1], str(w / "silent.wav"), "-o", str(w / "out" / "e.wav")], ["silent.wav", "silent"]),
        ("enroll-one-sample", [*ext[:-1], str(w / "one_sample.wav"), "-o", str(w / "out" / "e.wav")],
         ["one_sample.wav", "too short"]),
        ("enroll-one-sample-ivector", [*ext_iv[:-3], str(w / "one_sample.wav"), *ext_iv[-2:]],
         ["one_sample.wav", "too short"]),
        ("enroll-missing-option", [*ext[:-2], "-o", str(w / "out" / "e.wav")], ["--enroll"]),
        ("extract-list-missing-file", [*lst, str(w / "jobs_missing.txt")], ["line 1", "nowhere.wav"]),
        ("extract-list-short-line", [*lst, str(w / "jobs_short.txt")], ["line 1"]),
        ("extract-list-missing", [*lst, str(w / "nowhere.txt")], ["nowhere.txt"]),
        ("ivector-train-list-missing", [*ivt[:3], str(w / "wavs_missing.txt"), *ivt[4:]], ["nowhere.wav"]),
        ("info-non-utf8-name", ["info", os.fsdecode(str(w).encode() + b"/mod\xff\xfe.pt")], ["mod"]),
        # numeric options
        ("separate-chunk-nan", [*sep, mix, *out, "--chunk-seconds", "nan"], ["--chunk-seconds"]),
        ("separate-chunk-inf", [*sep, mix, *out, "--chunk-seconds", "inf"], ["--chunk-seconds"]),
        ("separate-chunk-zero", [*sep, mix, *out, "--chunk-seconds", "0"], ["--chunk-seconds"]),
        ("separate-chunk-negative", [*sep, mix, *out, "--chunk-seconds", "-1"], ["--chunk-seconds"]),
        ("separate-chunk-text", [*sep, mix, *out, "--chunk-seconds", "long"], ["--chunk-seconds"]),
        ("separate-chunk-below-a-sample", [*sep, mix, *out, "--chunk-seconds", "1e-9", "--overlap-seconds", "0"],
         ["--chunk-seconds"]),
        ("separate-overlap-negative", [*sep, mix, *out, "--overlap-seconds", "-0.5"], ["--overlap-seconds"]),
        ("separate-overlap-not-below-chunk", [*sep, mix, *out, "--chunk-seconds", "1", "--overlap-seconds", "1"],
         ["--overlap-seconds"]),
        ("separate-device-missing-gpu", [*sep, mix, *out, "--device", "cuda:99"], ["--device"]),
        ("separate-device-unknown", [*sep, mix, *out, "--device", "banana"], ["--device"]),
        ("extract-chunk-nan", [*ext, "-o", str(w / "out" / "e.wav"), "--chunk-seconds", "nan"], ["--chunk-seconds"]),
        ("extract-overlap-too-long", [*ext, "-o", str(w / "out" / "e.wav"), "--chunk-seconds", "1",
                                      "--overlap-seconds", "0.9"], ["--overlap-seconds"]),
        ("extract-device-missing-gpu", [*ext, "-o", str(w / "out" / "e.wav"), "--device", "cuda:99"], ["--device"]),
        ("classify-top-k-zero", [*cls, "-k", "0"], ["--top-k"]),
        ("classify-top-k-negative", [*cls, "-k", "-2"], ["--top-k"]),
        ("classify-top-k-above-classes", [*cls, "-k", "9"], ["--top-k"]),
        ("classify-window-zero", [*cls, "--window", "0"], ["--window"]),
        ("classify-window-nan", [*cls, "--window", "nan"], ["--window"]),
        ("classify-window-below-a-frame", [*cls, "--window", "0.001"], ["--window"]),
        ("segment-window-below-a-frame", [*seg, "--window", "0.001", "--hop", "0.001"], ["--window"]),
        ("segment-hop-zero", [*seg, "--hop", "0"], ["--hop"]),
        ("segment-hop-above-window", [*seg, "--hop", "2", "--window", "1"], ["--hop"]),
        ("segment-window-inf", [*seg, "--window", "inf"], ["--window"]),
        ("segment-smooth-negative", [*seg, "--smooth", "-1"], ["--smooth"]),
        ("segment-block-zero", [*seg, "--block", "0"], ["--block"]),
        ("segment-silence-nan", [*seg, "--silence-db", "nan"], ["--silence-db"]),
        ("ivector-components-zero", [*ivt, "--components", "0"], ["--components"]),
        ("ivector-rank-zero", [*ivt, "--rank", "0"], ["--rank"]),
        ("ivector-rank-negative", [*ivt, "--rank", "-3"], ["--rank"]),
        ("ivector-sample-rate-zero", [*ivt, "--sample-rate", "0"], ["--sample-rate"]),
        ("ivector-iterations-zero", [*ivt, "--tv-iterations", "0"], ["--tv-iterations"]),
        ("ivector-device-missing-gpu", [*ivt, "--device", "cuda:99"], ["--device"]),
        ("evaluate-out-is-file", ["evaluate", str(w / "conf.yml"), "--split", "valid", "--model", str(w / "sep.pt"),
                                  "-o", str(w / "a_file")], ["a_file", "not a folder"]),
        ("ivector-lda-above-speakers", [*ivt, "--lda-dim", "3"], ["--lda-dim"]),
        ("evaluate-examples-negative", ["evaluate", str(w / "conf.yml"), "--examples", "-1"], ["--examples"]),
        ("prepare-seconds-zero", ["prepare", "smn_mini", str(w / "out"), "--seconds", "0"], ["--seconds"]),
        ("prepare-timeline-nan", ["prepare", "smn_mini", str(w / "out"), "--timeline-seconds", "nan"],
         ["--timeline-seconds"]),
        # the new spellings (the rows above keep the old ones working for a release; tests/test_cli_dialect.py)
        ("new-info-model-missing", ["info", "--model", str(w / "nowhere.pt")], ["nowhere.pt"]),
        ("new-separate-into-its-own-folder", [*sep, str(w / "sepdir"), "--output", str(w / "sepdir")],
         ["mix_s1.wav", "input"]),
        ("new-separate-list-missing", [*sep, "--list", str(w / "nowhere.txt"), *out], ["nowhere.txt"]),
        ("new-separate-list-missing-file", [*sep, "--list", str(w / "wavs_missing.txt"), *out],
         ["line 1", "nowhere.wav"]),
        ("new-separate-list-repeats-an-input", [*sep, mix, "--list", str(w / "jobs_short.txt"), *out], ["two outputs"]),
        ("new-separate-nothing-to-do", [*sep, *out], ["MIX or --list"]),
        ("new-extract-out-is-mixture", [*ext, "--output", mix], ["mix.wav", "input"]),
        ("new-segment-out-is-file", [*seg[:-2], "--output", str(w / "a_file")], ["a_file", "not a folder"]),
        ("new-segment-list-missing", [*seg[:3], "--list", str(w / "nowhere.txt"), *out], ["nowhere.txt"]),
        ("new-classify-list-missing-file", [*cls[:3], "--list", str(w / "wavs_missing.txt")],
         ["line 1", "nowhere.wav"]),
        ("new-classify-clip-zero", [*cls, "--clip-seconds", "0"], ["--clip-seconds"]),
        ("new-classify-clip-nan", [*cls, "--clip-seconds", "nan"], ["--clip-seconds"]),
        ("new-classify-clip-below-a-frame", [*cls, "--clip-seconds", "0.001"], ["--clip-seconds"]),
        ("new-ivector-train-out-is-list", ["ivector", "train", "--list", str(w / "wavs.txt"), "-o", str(w / "wavs.txt"),
                                           *ivt[6:]], ["wavs.txt", "input"]),
        ("new-ivector-train-list-missing", ["ivector", "train", "--list", str(w / "wavs_missing.txt"), "-o",
                                            str(w / "out" / "iv.pt"), *ivt[6:]], ["nowhere.wav"]),
        ("new-ivector-extract-corrupt", ["ivector", "extract", "--model", str(w / "garbage.pt"), "--list",
                                         str(w / "wavs.txt"), "-o", str(w / "out"), "--device", "cpu"], ["garbage.pt"]),
        ("new-evaluate-out-is-file", ["evaluate", str(w / "conf.yml"), "--split", "valid", "--model",
                                      str(w / "sep.pt"), "--output", str(w / "a_file")], ["a_file", "not a folder"]),
        ("new-prepare-timeline-nan", ["prepare", "smn_mini", "-o", str(w / "out"), "--timeline-seconds", "nan"],
         ["--timeline-seconds"]),
        # --device where the dialect added it
        ("classify-device-missing-gpu", [*cls, "--device", "cuda:99"], ["--device"]),
        ("classify-device-unknown", [*cls, "--device", "banana"], ["--device"]),
        ("segment-device-missing-gpu", [*seg, "--device", "cuda:99"], ["--device"]),
        ("evaluate-device-missing-gpu", ["evaluate", str(w / "conf.yml"), "--split", "valid", "--model",
                                         str(w / "sep.pt"), *out, "--device", "cuda:99"], ["--device"]),
        ("export-device-missing-gpu", ["export", "--model", str(w / "sep.pt"), "--format", "torchscript", "-o",
                                       str(w / "out" / "sep.ts"), "--device", "cuda:99"], ["--device"]),
        # round two: lists that include themselves, numbers that would size a huge allocation, damaged metadata
        ("input-list-includes-itself", [*sep, "@" + str(w / "self_list.txt"), *out], ["self_list.txt", "itself"]),
        ("ivector-components-huge", [*ivt, "--components", str(10**9)], ["--components", "65536"]),
        ("ivector-rank-huge", [*ivt, "--rank", str(10**9)], ["--rank", "4096"]),
        ("ivector-beyond-memory", [*ivt, "--components", "4096", "--rank", "4096"],
         ["--components 4096", "--rank 4096", "GiB"]),
        ("segment-window-huge", [*seg, "--window", "1e12", "--hop", "0.1"], ["--window", "600"]),
        ("segment-smooth-huge", [*seg, "--smooth", "1e12"], ["--smooth", "600"]),
        ("classify-clip-huge", [*cls, "--clip-seconds", "1e12"], ["--clip-seconds", "600"]),
        ("prepare-seconds-huge", ["prepare", "smn_mini", "-o", str(w / "out" / "smn"), "--seconds", "1e12"],
         ["--seconds", "600"]),
        ("prepare-timeline-huge", ["prepare", "smn_mini", "-o", str(w / "out" / "smn"), "--timeline-seconds", "1e12"],
         ["--timeline-seconds", "3600"]),
        ("esc50-missing-columns", ["prepare", "esc50", str(w / "esc_columns")], ["esc50.csv", "target, esc10"]),
        ("esc50-bad-fold", ["prepare", "esc50", str(w / "esc_fold")], ["esc50.csv", "line 2", "fold 'one'"]),
        ("esc50-bad-target", ["prepare", "esc50", str(w / "esc_target")], ["esc50.csv", "line 3", "target 'rain'"]),
        ("input-header-claims-2**36-samples", [*cls[:3], str(w / "huge_header.flac")], ["huge_header.flac", "claims"]),
        ("separate-header-claims-2**36-samples", [*sep, str(w / "huge_header.flac"), *out], ["huge_header.flac"]),
        ("model-sample-rate-zero", [*sep[:2], str(w / "rate_zero.pt"), mix, *out], ["rate_zero.pt", "sample_rate 0"]),
        ("model-plain-zip", ["info", "--model", str(w / "plain_zip.pt")],
         ["plain_zip.pt", "not a sepaudio model file", "readme.txt"]),
        ("separate-model-plain-zip", [*sep[:2], str(w / "plain_zip.pt"), mix, *out],
         ["plain_zip.pt", "not a sepaudio"]),
        # standard output is held to the rules of files: no silent clipping, no NaN / Inf
        ("extract-stream-stdout-would-clip", ["extract", "--model", str(w / "tse_causal_loud.pt"), "--mixture", mix,
                                              "--enroll", str(w / "enroll.wav"), "--stream", "-o", "-"],
         ["<stdout>", "full scale", "--pcm-format f32le"]),
        ("extract-stream-stdout-nan", ["extract", "--model", str(w / "tse_nan.pt"), "--mixture", mix, "--enroll",
                                       str(w / "enroll.wav"), "--stream", "-o", "-", "--pcm-format", "f32le"],
         ["<stdout>", "NaN"]),
        ("extract-output-nan", ["extract", "--model", str(w / "tse_nan.pt"), *ext[3:], "-o", str(w / "out" / "e.wav")],
         ["e.wav", "NaN", "nothing was written"]),
    ]
    return cases


CASE_IDS = [case[0] for case in _cases(Path("/w"))]


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (folders too) with the hash of its content."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() and not p.is_symlink() else
            hashlib.sha256(p.read_bytes() if p.exists() else b"dangling").hexdigest()
            for p in sorted(root.rglob("*"))}


def run(argv: list[str]) -> int:
    """``sepaudio ARGV`` in this process: its exit status (argparse exits by itself on a usage error)."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


def test_the_table_is_large():
    assert len(CASE_IDS) == len(set(CASE_IDS)) >= 60


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_input_is_refused(world, case, capsys):
    _, argv, words = next(c for c in _cases(world) if c[0] == case)
    before = _snapshot(world)
    status = run(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    assert err.count("error:") == 1, err
    for word in words:
        assert word in err, f"{word!r} not in: {err}"
    assert _snapshot(world) == before, "an input changed or a file was written"
    assert not (world / "PWNED").exists()


def _api_cases(w: Path):
    """``(id, call, error type, words)``: the same mistakes through the Python API."""
    from sepaudio.classify import classify_files
    from sepaudio.data.esc50 import esc50
    from sepaudio.data.prepare import prepare_smn_mini
    from sepaudio.separate import expand_inputs
    from sepaudio.extract import enrollment_embedding, extract_file, extract_list, load_extractor
    from sepaudio.inference import process_tensor
    from sepaudio.separate import separate_files
    from sepaudio.train import check_config, load_config

    def model(name):
        return lambda: load_model(w / name)

    tse = lambda: load_extractor(w / "tse.pt")[0]  # noqa: E731
    mix, enroll = w / "mix.wav", w / "enroll.wav"
    return [
        ("model-garbage", model("garbage.pt"), ModelFileError, ["garbage.pt"]),
        ("model-hostile-pickle", model("evil_torch.pt"), ModelFileError, ["evil_torch.pt"]),
        ("model-missing-fields", model("no_weights.pt"), ModelFileError, ["state_dict"]),
        ("model-bad-args", model("bad_args.pt"), ModelFileError, ["bogus"]),
        ("model-wrong-kind", lambda: load_model(w / "cls.pt", expected=TseNet), ModelFileError, ["tsenet"]),
        ("audio-missing", lambda: audio.load(w / "nowhere.wav"), AudioError, ["nowhere.wav"]),
        ("audio-nan", lambda: audio.load(w / "nan.wav"), AudioError, ["NaN"]),
        ("audio-save-clips", lambda: audio.save(w / "out" / "x.flac", torch.full((10,), 2.0), RATE), AudioError,
         ["full scale"]),
        ("audio-save-onto-folder", lambda: audio.save(w / "out_is_dir.wav", torch.zeros(10), RATE), OutputError,
         ["folder"]),
        ("extract-out-is-input", lambda: extract_file(tse(), mix, enroll, enroll), OutputError, ["input"]),
        ("extract-list-escapes", lambda: extract_list(w / "tse.pt", w / "jobs_escape.txt", w / "out"), OutputError,
         ["outside"]),
        ("enroll-silent", lambda: enrollment_embedding(tse(), w / "silent.wav"), AudioError, ["silent"]),
        ("enroll-one-sample", lambda: enrollment_embedding(tse(), w / "one_sample.wav"), AudioError, ["too short"]),
        ("enroll-one-sample-ivector", lambda: enrollment_embedding(*load_extractor(w / "tse_iv.pt", w / "iv.pt")[:1],
                                                                   w / "one_sample.wav",
                                                                   load_extractor(w / "tse_iv.pt", w / "iv.pt")[1]),
         AudioError, ["too short"]),
        ("separate-into-itself", lambda: separate_files(w / "sep.pt", [w / "sepdir"], w / "sepdir"), OutputError,
         ["mix_s1.wav"]),
        ("separate-device", lambda: separate_files(w / "sep.pt", [mix], w / "out", device="cuda:99"), ConfigError,
         ["--device"]),
        ("chunk-overlap", lambda: process_tensor(torch.zeros(100), lambda x: x, RATE, 0.01, 0.01), ConfigError,
         ["--overlap-seconds"]),
        ("classify-top-k", lambda: classify_files(w / "cls.pt", [mix], k=7), ConfigError, ["--top-k"]),
        ("config-unknown-key", lambda: load_config(w / "conf.yml", ["optim.lrr=1"]), ConfigError, ["optim.lr"]),
        ("config-bad-value", lambda: check_config({**load_config(w / "conf.yml"), "seed": -1}), ConfigError,
         ["seed"]),
        ("list-missing-file", lambda: extract_list(w / "tse.pt", w / "jobs_missing.txt", w / "out"), DatasetError,
         ["line 1"]),
        ("audio-header-claims-too-much", lambda: audio.load(w / "huge_header.flac"), AudioError, ["claims"]),
        ("model-sample-rate-zero", model("rate_zero.pt"), ModelFileError, ["sample_rate 0"]),
        ("model-plain-zip", model("plain_zip.pt"), ModelFileError, ["not a sepaudio model file"]),
        ("list-includes-itself", lambda: expand_inputs(["@" + str(w / "self_list.txt")]), AudioError, ["itself"]),
        ("esc50-bad-target", lambda: esc50(str(w / "esc_target")), DatasetError, ["line 3", "target"]),
        ("prepare-seconds-huge", lambda: prepare_smn_mini(w / "out" / "smn", seconds=1e12), ConfigError,
         ["--seconds"]),
    ]


API_IDS = [case[0] for case in _api_cases(Path("/w"))]


@pytest.mark.parametrize("case", API_IDS)
def test_python_api_raises_sepaudio_errors(world, case):
    _, call, kind, words = next(c for c in _api_cases(world) if c[0] == case)
    before = _snapshot(world)
    with pytest.raises(kind) as raised:
        call()
    assert isinstance(raised.value, SepaudioError)
    for word in words:
        assert word in str(raised.value)
    assert _snapshot(world) == before


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        new = audio.save(tmp_path / "new.wav", torch.zeros(10), RATE)
        assert new.stat().st_mode & 0o777 == 0o644
        os.chmod(new, 0o640)
        audio.save(new, torch.ones(10) * 0.5, RATE)  # replacing a file keeps its mode
        assert new.stat().st_mode & 0o777 == 0o640
        os.umask(0o077)
        assert ConvTasNet(**SEP_ARGS).save(tmp_path / "m.pt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_non_utf8_file_names_work(world, tmp_path, monkeypatch):
    import io

    folder = Path(os.fsdecode(bytes(tmp_path) + b"/d\xe9j\xe0"))  # Latin-1 bytes: not valid UTF-8
    folder.mkdir()
    mix = folder / os.fsdecode(b"m\xefx.wav")
    mix.write_bytes((world / "mix.wav").read_bytes())
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["separate", "--model", str(world / "sep.pt"), str(folder), "-o", str(folder)]) == 0
    assert main(["extract", "--model", str(world / "tse.pt"), "--mixture", str(mix), "--enroll",
                 str(world / "enroll.wav"), "-o", str(folder / os.fsdecode(b"\xff.wav"))]) == 0
    stdout.flush()
    printed = stdout.buffer.getvalue()
    assert b"/d\xe9j\xe0/m\xefx_s1.wav" in printed and b"/\xff.wav" in printed
    assert audio.load(folder / os.fsdecode(b"m\xefx_s2.wav"))[0].shape == (1, RATE)
    assert main(["segment", "--model", str(world / "cls.pt"), str(mix), "-o", str(folder), "--plot", "--format",
                 "rttm"]) == 0
    assert (folder / os.fsdecode(b"m\xefx.rttm")).read_bytes().startswith(b"SPEAKER m\xefx ")
    assert (folder / os.fsdecode(b"m\xefx.png")).is_file()


def test_cut_off_wav_is_read_with_a_warning(world, tmp_path, capsys):
    whole = (world / "mix.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:len(whole) // 2])
    wav, _ = audio.load(cut)
    assert 0 < wav.shape[-1] < RATE
    err = capsys.readouterr().err
    assert "cut.wav" in err and "promises" in err
    audio.load(cut)
    assert "cut.wav" not in capsys.readouterr().err  # once per file
    again = tmp_path / "again.wav"
    again.write_bytes(cut.read_bytes())
    assert main(["separate", "--model", str(world / "sep.pt"), str(again), "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err.count("again.wav: the header promises") == 1
    assert audio.load(tmp_path / "out" / "again_s1.wav")[0].shape == wav.shape


@pytest.mark.parametrize("command, signum, status", [("separate", signal.SIGINT, 130),
                                                     ("extract", signal.SIGTERM, 143)])
def test_a_signal_leaves_no_temporary_files(world, tmp_path, command, signum, status):
    """A real ``sepaudio separate`` / ``extract`` process, stopped while it writes: one line, no traceback, no
    leftovers."""
    long = tmp_path / "long.wav"
    audio.save(long, noise(600.0), RATE)
    out = tmp_path / "out"
    args = {"separate": ["--model", str(world / "sep.pt"), str(long), "-o", str(out)],
            "extract": ["--model", str(world / "tse.pt"), "--mixture", str(long), "--enroll", str(world / "enroll.wav"),
                        "-o", str(out / "target.wav")]}[command]
    process = subprocess.Popen(
        [sys.executable, "-m", "sepaudio", command, *args, "--chunk-seconds", "0.05", "--overlap-seconds", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
        # A child inherits an ignored SIGINT (as a shell's background jobs do), and Python then keeps ignoring it;
        # the test process can carry one from an earlier test, so the child starts with the default disposition.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (out.is_dir() and any(out.iterdir())) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()[1].decode()
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    err = err.decode()
    # CPython ends a process by the signal itself when the interrupt arrived inside an import, even once caught
    assert process.returncode in (status, -signum), err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"sepaudio {command}: ")
    assert list(out.iterdir()) == []
    assert long.exists()


def test_short_inputs_are_processed(world, tmp_path, capsys):
    """Allowed: a recording shorter than a model's frame is zero-padded to it (classify) or processed as it is
    (separate, extract, segment); an enrollment under a second works with a warning."""
    one = str(world / "one_sample.wav")
    assert main(["classify", "--model", str(world / "cls.pt"), one]) == 0
    assert main(["segment", "--model", str(world / "cls.pt"), one, "-o", str(tmp_path)]) == 0
    assert main(["separate", "--model", str(world / "sep.pt"), one, "-o", str(tmp_path)]) == 0
    assert audio.load(tmp_path / "one_sample_s1.wav")[0].shape == (1, 1)
    short = tmp_path / "short.wav"
    audio.save(short, noise(0.3, seed=7), RATE)
    assert main(["extract", "--model", str(world / "tse.pt"), "--mixture", one, "--enroll", str(short), "-o",
                 str(tmp_path / "e.wav")]) == 0
    assert "short.wav" in capsys.readouterr().err.split("warning:")[1]


def _full_disk(limit: int):
    """A child's ``preexec_fn``: files it writes stop growing at ``limit`` bytes (as on a full disk), with EFBIG
    rather than SIGXFSZ (which CPython ignores too)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("command", ["separate", "extract", "export"])
def test_a_full_disk_is_a_clean_error_with_no_partial_file(world, tmp_path, command):
    """A write refused by the system (here a file size limit; a full disk gives ENOSPC the same way) ends with one
    line naming the output, status 2, and nothing partial left, hidden temporary files included. TorchScript's own
    file writer would abort the process (exit 134) and leave a partial file."""
    mix = tmp_path / "long.wav"
    audio.save(mix, noise(2.0), RATE)  # every output here is above the limit (64 KB of audio, 60 KB of TorchScript)
    out = tmp_path / "out"
    args = {"separate": ["--model", str(world / "sep.pt"), str(mix), "-o", str(out)],
            "extract": ["--model", str(world / "tse.pt"), "--mixture", str(mix), "--enroll", str(world / "enroll.wav"),
                        "-o", str(out / "e.wav")],
            "export": ["--model", str(world / "sep.pt"), "--format", "torchscript", "-o", str(out / "m.ts")]}[command]
    out.mkdir()
    before = _snapshot(world)
    result = subprocess.run([sys.executable, "-m", "sepaudio", command, *args], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=_full_disk(16_000), timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"sepaudio {command}: error: ") and "could not be written (File too large" in line, line
    assert str(out) in line and "no partial file" in line
    assert list(out.iterdir()) == []
    assert _snapshot(world) == before


def _without_file_permissions_bypass():
    """A child's ``preexec_fn`` under root: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so
    that the programs it runs obey file permissions like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.parametrize("what", ["audio", "model", "list"])
def test_an_unreadable_file_is_named(world, tmp_path, what):
    """chmod 000 on an input: 'cannot read FILE: permission denied', not libsndfile's 'System error' or torch's
    internals. Root reads any file: its child runs without that privilege, or the test is skipped."""
    locked = tmp_path / {"audio": "locked.wav", "model": "locked.pt", "list": "locked.txt"}[what]
    shutil.copy(world / {"audio": "mix.wav", "model": "sep.pt", "list": "wavs.txt"}[what], locked)
    locked.chmod(0)
    preexec = None
    if os.geteuid() == 0:
        if not _can_drop_privileges():
            pytest.skip("running as root, unable to drop CAP_DAC_OVERRIDE: permission checks do not apply")
        preexec = _without_file_permissions_bypass
    probe = subprocess.run([sys.executable, "-c", f"open({str(locked)!r}).close()"], capture_output=True,
                           preexec_fn=preexec)
    if probe.returncode == 0:
        pytest.skip("this process reads a file of mode 000 (root?): permission checks do not apply")
    args = {"audio": ["separate", "--model", str(world / "sep.pt"), str(locked), "-o", str(tmp_path / "out")],
            "model": ["info", "--model", str(locked)],
            "list": ["ivector", "train", "--list", str(locked), "-o", str(tmp_path / "iv.pt"), "--device", "cpu"]}[what]
    result = subprocess.run([sys.executable, "-m", "sepaudio", *args], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=preexec, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"error: cannot read {locked}: permission denied" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "iv.pt").exists()


def _can_drop_privileges() -> bool:
    try:
        subprocess.run(["true"], preexec_fn=_without_file_permissions_bypass, check=True)
        return True
    except (subprocess.SubprocessError, OSError):
        return False


def test_text_outputs_escape_what_their_syntax_cannot_hold(tmp_path):
    """A label (from a model file: anything) or file id with a comma, quote, tab or line break stays one field of one
    line: CSV quotes it (and reads it back), RTTM and Audacity labels replace what their fields cannot hold."""
    from sepaudio.timeline import Segment, format_timeline, read_timeline, write_timeline

    label = 'a,b "c"\td\ne'
    segments = [Segment(label, 0.0, 1.5), Segment("speech", 1.5, 2.0)]
    assert read_timeline(write_timeline(tmp_path / "t.csv", segments, "csv")) == segments
    rttm = format_timeline(segments, "rttm", "my file\n1").splitlines()
    assert len(rttm) == 2 and all(len(line.split()) == 10 for line in rttm)
    assert rttm[0].split()[1] == "my_file_1" and rttm[0].split()[7] == 'a,b_"c"_d_e'
    labels = format_timeline(segments, "audacity").splitlines()
    assert len(labels) == 2 and labels[0].split("\t") == ["0.000000", "1.500000", 'a,b "c" d e']
