"""The documents' runner must fail on any answer other than the one shown: checked here on small documents
before it runs the real ones (tests/docs/run.sh)."""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rundoc  # noqa: E402


def run(markdown):
    """Runs `markdown` as a document; returns (exit code, what the runner printed)."""
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "DOC.md")
        with open(path, "w", encoding="utf-8") as doc:
            doc.write(markdown)
        done = subprocess.run(
            [sys.executable, rundoc.__file__, "--workdir", work, "--logs", work, path],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode, done.stdout + done.stderr


class Matching(unittest.TestCase):
    def test_lines_match_exactly_or_with_an_ellipsis_within_a_line(self):
        self.assertTrue(rundoc.matches(["a", "b"], ["a", "b"]))
        self.assertFalse(rundoc.matches(["a", "b"], ["a", "c"]))
        self.assertFalse(rundoc.matches(["a"], ["a", "b"]))
        self.assertTrue(rundoc.matches(['{"id":"…","n":1}'], ['{"id":"x-y","n":1}']))
        self.assertFalse(rundoc.matches(['{"id":"…","n":1}'], ['{"id":"x-y","n":2}']))
        self.assertFalse(rundoc.matches(["a…"], ["a", "b"]), "… in a line never spans lines")

    def test_an_ellipsis_line_stands_for_any_lines(self):
        self.assertTrue(rundoc.matches(["HTTP/1.1 201 Created", "…", "location: /x", "…"],
                                       ["HTTP/1.1 201 Created", "a: b", "location: /x", "", "{}"]))
        self.assertTrue(rundoc.matches(["…", "last"], ["last"]))
        self.assertFalse(rundoc.matches(["…", "location: /x", "…"], ["location: /y"]))

    def test_no_output_shown_means_none_printed(self):
        self.assertTrue(rundoc.matches([], []))
        self.assertFalse(rundoc.matches([], ["something"]))


class Running(unittest.TestCase):
    def test_a_document_that_answers_as_shown_passes_and_shares_one_shell(self):
        code, out = run("```console\n$ X=41\n$ echo $((X + 1))\n42\n$ false\n[exit 1]\n```\n")
        self.assertEqual(code, 0, out)
        self.assertIn("3 commands answered as documented", out)

    def test_a_different_answer_fails_naming_the_line(self):
        code, out = run("text\n\n```console\n$ echo 42\n43\n```\n")
        self.assertNotEqual(code, 0)
        self.assertIn("DOC.md:4", out)
        self.assertIn("42", out)

    def test_a_failing_command_fails_unless_its_exit_is_shown(self):
        code, out = run("```console\n$ ls /no/such/folder >/dev/null 2>&1\n```\n")
        self.assertNotEqual(code, 0)
        self.assertIn("[exit 2]", out)

    def test_continuation_lines_comments_and_other_blocks(self):
        doc = ("```sh\nexit 1\n```\n"
               "```console\n# a comment\n$ echo a \\\n    b\na b\n```\n"
               "<!-- doctest: skip the reason -->\n```console\n$ exit 1\n```\n")
        code, out = run(doc)
        self.assertEqual(code, 0, out)
        self.assertIn("skip", out)

    def test_a_document_without_commands_fails(self):
        code, out = run("# Title\n\n```sh\nmake run\n```\n")
        self.assertNotEqual(code, 0)
        self.assertIn("no command to run", out)

    def test_a_command_that_reads_standard_input_does_not_eat_the_next_ones(self):
        code, out = run("```console\n$ cat\n$ echo after\nafter\n```\n")
        self.assertEqual(code, 0, out)

    def test_a_background_command_runs_beside_the_shell(self):
        doc = ("<!-- doctest: background -->\n```console\n$ touch started; sleep 30\n```\n"
               "```console\n$ sleep 1; ls started\nstarted\n```\n")
        code, out = run(doc)
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
