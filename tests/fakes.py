"""Small fake copies of the corpora's documented layouts (tiny audio, same folders, file names and metadata)."""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from sepaudio import audio

LABELS = ("speech", "music", "noise")


def tone(seconds: float, level: float = 0.1, rate: int = 16000, freq: float = 440.0) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return level * torch.sin(2 * torch.pi * freq * t)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


# Three mixtures of LibriSpeech utterances (speaker-chapter-utterance): each speaker has two utterances among the first
# two sources, so every target can be enrolled by another utterance of its speaker
LIBRI_MIXTURES = [("100-1-0001", "200-1-0001", "300-1-0001"), ("200-1-0002", "300-1-0002", "100-1-0002"),
                  ("300-1-0003", "100-1-0003", "200-1-0003")]


def fake_librimix(root: Path, n_src: int = 2, sets=("train-360", "dev", "test"), rate: str = "8k", mode: str = "min",
                  mixture: str = "mix_clean") -> Path:
    """``<root>/wav<rate>/<mode>/{metadata/mixture_<set>_<mixture>.csv, <set>/{<mixture>,s1,..,noise}/<id>.wav}``
    (github.com/JorisCos/LibriMix): three mixtures per set, mixture ``k`` ``0.5 s + 100 k`` samples long. The CSVs
    hold the generating machine's absolute paths, as the real ones do. ``mix_single`` mixtures hold one utterance;
    ``mix_both`` and ``mix_single`` add noise."""
    samples = int(rate[:-1]) * 1000
    n_src = 1 if mixture == "mix_single" else n_src
    folders = [mixture] + [f"s{k + 1}" for k in range(n_src)] + (["noise"] if mixture != "mix_clean" else [])
    base = root / f"wav{rate}" / mode
    for split in sets:
        rows = []
        for i, utterances in enumerate(LIBRI_MIXTURES):
            name = "_".join(utterances[:n_src])
            length = samples // 2 + 100 * i
            waves = [0.1 * torch.randn(length) for _ in folders[1:]]
            for folder, wave in zip(folders, [sum(waves), *waves]):
                audio.save(base / split / folder / f"{name}.wav", wave, samples)
            elsewhere = f"/storage/LibriMix/wav{rate}/{mode}/{split}"
            rows.append([name, *(f"{elsewhere}/{folder}/{name}.wav" for folder in folders), length])
        sources = [f"source_{k + 1}_path" for k in range(n_src)] + (["noise_path"] if "noise" in folders else [])
        write_csv(base / "metadata" / f"mixture_{split}_{mixture}.csv",
                  ["mixture_ID", "mixture_path", *sources, "length"], rows)
    return root


def fake_wsj0mix(root: Path, n_src: int = 2, n_mix: int = 2, rate: int = 8000) -> Path:
    """``<root>/{tr,cv,tt}/{mix,s1,s2}/<utt1>_<snr>_<utt2>_<snr>.wav`` (the wav8k/min level of WSJ0-2mix)."""
    for split in ("tr", "cv", "tt"):
        for i in range(n_mix):
            name = f"01{split}010{i}_1.2_02{split}020{i}_-1.2"
            sources = [0.1 * torch.randn(rate // 2 + 50 * i) for _ in range(n_src)]
            for k, src in enumerate(sources):
                audio.save(root / split / f"s{k + 1}" / f"{name}.wav", src, rate)
            audio.save(root / split / "mix" / f"{name}.wav", sum(sources), rate)
    return root


def fake_wsj0_2mix_extr(root: Path, mode: str = "max", rate: int = 8000) -> Path:
    """``<root>/wav8k/<mode>/{tr,cv,tt}/{mix,s1,aux}/<utt1>_<snr1>_<utt2>_<snr2>_<aux utt>.wav``
    (github.com/xuchenglin28/speaker_extraction): s1 is the target, aux another utterance of its speaker."""
    speakers = ["01a", "20b", "40c", "05d"]
    for split in ("tr", "cv", "tt"):
        for i in range(4 if split == "tr" else 2):
            target, other = speakers[i % 4], speakers[(i + 1) % 4]
            name = f"{target}{split}01{i}_0.4_{other}{split}02{i}_-0.4_{target}{split}03{i}"
            voices = [tone(0.4 + 0.05 * i, rate=rate, freq=150.0 + 40 * speakers.index(s)) for s in (target, other)]
            for folder, wave in (("mix", voices[0] + voices[1]), ("s1", voices[0]), ("aux", voices[0].roll(99))):
                audio.save(root / "wav8k" / mode / split / folder / f"{name}.wav", wave, rate)
    return root


def fake_musan(root: Path, files_per_class: int = 20, rate: int = 16000) -> Path:
    """``<root>/{speech,music,noise}/src/<class>-<k>.wav``: 0.6 s of tone, then 0.5 s of silence."""
    for k, label in enumerate(LABELS):
        for i in range(files_per_class):
            wav = torch.cat([tone(0.6, freq=200.0 * (k + 1), rate=rate), torch.zeros(rate // 2)])
            audio.save(root / label / "src" / f"{label}-{i:04d}.wav", wav, rate)
    return root


def fake_esc50(root: Path, seconds: float = 5.0) -> Path:
    """``<root>/{audio/<fold>-<src>-A-<target>.wav, meta/esc50.csv}``: 10 clips of 3 classes over the 5 folds."""
    rows = []
    for i in range(10):
        category, target = [("dog", 0), ("rain", 1), ("clock_tick", 2)][i % 3]
        name = f"{i % 5 + 1}-{1000 + i}-A-{target}.wav"
        audio.save(root / "audio" / name, tone(seconds, rate=44100)[: int(44100 * seconds) - i * 100], 44100)
        rows.append([name, i % 5 + 1, target, category, str(category != "rain"), 1000 + i, "A"])
    write_csv(root / "meta" / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
              rows)
    return root


def fake_us8k(root: Path, seconds: float = 1.0) -> Path:
    """``<root>/{audio/fold<k>/<fsID>-<classID>-0-0.wav, metadata/UrbanSound8K.csv}``: 12 clips of 1, 2 or 3 times
    ``seconds``, 2 classes, 10 folds."""
    rows = []
    for i in range(12):
        fold, cid = i % 10 + 1, i % 2
        name = f"{100 + i}-{cid}-0-0.wav"
        audio.save(root / "audio" / f"fold{fold}" / name, tone(seconds * (1 + i % 3), rate=22050), 22050)
        rows.append([name, 100 + i, 0.0, 1.0, 1, fold, cid, ["air_conditioner", "car_horn"][cid]])
    write_csv(root / "metadata" / "UrbanSound8K.csv",
              ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"], rows)
    return root


def ivector_tse(folder: Path, corpus: Path, tcn: dict, size: int = 4, iterations: int = 1):
    """An untrained i-vector TseNet (``folder/tse.pt``) with an extractor of ``size`` Gaussians and rank trained on
    ``corpus`` beside it (``folder/ivector.pt``), where ``sepaudio extract`` finds it. Returns the extractor and the
    corpus's files by speaker."""
    from sepaudio.data import scan_speakers
    from sepaudio.models import TseNet
    from sepaudio.speaker import train_ivector_extractor

    files = scan_speakers(corpus)
    wavs = [audio.load(p)[0][0] for paths in files.values() for p in paths]
    extractor = train_ivector_extractor(wavs, 8000, n_components=size, rank=size, tv_iterations=iterations,
                                        progress=False)
    extractor.save(folder / "ivector.pt")
    TseNet(ivector_dim=extractor.dim, n_filters=32, filter_length=32, stride=16, speaker_dim=8,
           tcn=tcn).eval().save(folder / "tse.pt")
    return extractor, files
