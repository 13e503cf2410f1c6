"""``sepaudio separate``: one wav per source, chunked like process_tensor, batch over files and folders."""
import torch

from sepaudio import audio
from sepaudio.cli import main
from sepaudio.inference import process_tensor
from sepaudio.models import ConvTasNet, MiTAS
from sepaudio.separate import expand_inputs, separate_file

SMALL = dict(n_filters=16, filter_length=8, tcn=dict(channels=8, hidden=16, skip_channels=8, blocks=3, repeats=2))


def test_separate_file_writes_one_wav_per_source(tmp_path):
    torch.manual_seed(0)
    model = MiTAS(**SMALL, n_src=3).eval()
    wav = 0.3 * torch.randn(8000 * 3)
    audio.save(tmp_path / "talk.wav", wav, 8000)
    paths = separate_file(model, tmp_path / "talk.wav", tmp_path / "out", chunk_seconds=1.0, overlap_seconds=0.25,
                          progress=False)
    assert [p.name for p in paths] == ["talk_s1.wav", "talk_s2.wav", "talk_s3.wav"]
    with torch.no_grad():
        expected = process_tensor(wav, model, 8000, 1.0, 0.25, align_sources=True)
    for path, ref in zip(paths, expected):
        got, rate = audio.load(path)
        assert rate == 8000 and got.shape == (1, wav.shape[0])
        torch.testing.assert_close(got[0], ref, atol=1e-5, rtol=1e-4)


def test_cli_batch_over_folder_and_list(tmp_path, capsys):
    ConvTasNet(**SMALL).save(tmp_path / "model.pt")
    for folder in ("a", "b"):  # same names in two folders: outputs keep the folders apart
        audio.save(tmp_path / "in" / folder / "mix.wav", 0.1 * torch.randn(4000), 8000)
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'in' / 'a' / 'mix.wav'}\n\n")
    assert len(expand_inputs([f"@{tmp_path / 'list.txt'}", tmp_path / "in"])) == 3

    code = main(["separate", "--model", str(tmp_path / "model.pt"), str(tmp_path / "in"), "-o",
                 str(tmp_path / "out"), "--chunk-seconds", "0.2", "--overlap-seconds", "0.05"])
    assert code == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.wav"))
    assert written == ["a/mix_s1.wav", "a/mix_s2.wav", "b/mix_s1.wav", "b/mix_s2.wav"]
    assert "mix_s2.wav" in capsys.readouterr().out
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary files left


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["separate", "--model", str(tmp_path / "none.pt"), str(tmp_path), "-o", str(tmp_path)]) == 2
    assert "none.pt" in capsys.readouterr().err
    ConvTasNet(**SMALL).save(tmp_path / "model.pt")
    assert main(["separate", "--model", str(tmp_path / "model.pt"), str(tmp_path / "missing.wav"), "-o",
                 str(tmp_path / "out")]) == 2
    assert "missing.wav" in capsys.readouterr().err
    audio.save(tmp_path / "mix.wav", torch.zeros(800), 8000)
    assert main(["separate", "--model", str(tmp_path / "model.pt"), str(tmp_path / "mix.wav"), "-o",
                 str(tmp_path / "out"), "--chunk-seconds", "1", "--overlap-seconds", "0.8"]) == 2
    assert "overlap" in capsys.readouterr().err
