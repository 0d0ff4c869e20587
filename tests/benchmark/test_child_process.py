"""run_json_child: the result line, a failing child, a timeout."""
import sys

from longtail_benchmark.child_process import run_json_child


def test_reads_the_tagged_line():
    code = 'print("noise"); print("@@{\\"a\\": 1.5}")'
    out = run_json_child([sys.executable, '-c', code], '@@')
    assert out.data == {'a': 1.5} and out.returncode == 0
    assert not out.timed_out


def test_failure_keeps_the_error_tail():
    code = 'import sys; sys.stderr.write("l1\\nl2\\nboom\\n"); sys.exit(3)'
    out = run_json_child([sys.executable, '-c', code], '@@', tail_lines=2)
    assert out.data is None and out.returncode == 3
    assert out.tail == ['l2', 'boom']


def test_timeout():
    out = run_json_child([sys.executable, '-c', 'import time; time.sleep(5)'],
                         '@@', timeout=0.5)
    assert out.timed_out and out.data is None
