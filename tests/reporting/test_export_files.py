"""An export's NDJSON files: whole lines appended, cut back to the saved sizes on resume."""

import pytest

from fhir_server.reporting.export_files import OutputFiles, OutputLost, file_name, is_file_name


def test_lines_are_appended_and_counted(tmp_path):
    files = OutputFiles(tmp_path / "job")
    files.append(file_name("Patient"), [b'{"a":1}\n', b'{"a":2}\n'])
    files.append(file_name("Patient"), [b'{"a":3}\n'])
    files.append(file_name("Task"), [])  # nothing: no file
    files.flush()
    assert files.sizes() == {"Patient.ndjson": [24, 3]}
    files.close()
    assert (tmp_path / "job" / "Patient.ndjson").read_bytes() == b'{"a":1}\n{"a":2}\n{"a":3}\n'
    assert not (tmp_path / "job" / "Task.ndjson").exists()


def test_a_resumed_job_cuts_what_was_written_after_its_last_save(tmp_path):
    first = OutputFiles(tmp_path)
    first.append("Patient.ndjson", [b"1\n", b"2\n"])
    first.flush()
    saved = first.sizes()
    first.append("Patient.ndjson", [b"3\n"])  # written, then the process died before saving
    first.append("Task.ndjson", [b"t\n"])
    first.close()
    again = OutputFiles(tmp_path, saved)
    again.append("Patient.ndjson", [b"3\n"])
    again.close()
    assert (tmp_path / "Patient.ndjson").read_bytes() == b"1\n2\n3\n"
    assert not (tmp_path / "Task.ndjson").exists()  # the saved state never had it
    assert again.sizes() == {"Patient.ndjson": [6, 3]}


def test_a_file_shorter_than_saved_cannot_be_resumed(tmp_path):
    (tmp_path / "Patient.ndjson").write_bytes(b"1\n")
    with pytest.raises(OutputLost):
        OutputFiles(tmp_path, {"Patient.ndjson": [4, 2]})
    with pytest.raises(OutputLost):
        OutputFiles(tmp_path, {"Task.ndjson": [4, 2]})


def test_only_export_files_are_ever_removed_from_the_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("the operator's")
    (tmp_path / "Patient.ndjson").write_text("an old export\n")
    OutputFiles(tmp_path).close()
    assert (tmp_path / "notes.txt").exists() and not (tmp_path / "Patient.ndjson").exists()


@pytest.mark.parametrize("name, ok", [
    ("Patient.ndjson", True), ("error.ndjson", True), ("../Patient.ndjson", False), ("patient.ndjson", False),
    ("Patient.json", False), ("Patient.ndjson/x", False), (".ndjson", False), ("Patient\n.ndjson", False),
])
def test_file_names(name, ok):
    assert is_file_name(name) is ok
