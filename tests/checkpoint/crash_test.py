"""Crash test: `ckpt_tool loop DIR` writes checkpoints (tmp + fsync + rename, keep 3) in a
loop; it is killed with SIGKILL at random times; after every kill each final-named file must
open, verify (checksums) and hold its step's values (`ckpt_tool verify DIR`).

usage: crash_test.py CKPT_TOOL TMPDIR [KILLS]"""
import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import time


def main():
    tool, d = sys.argv[1], sys.argv[2]
    kills = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    rng = random.Random(int(os.environ.get("PEP_CRASH_SEED", "12345")))
    mid_write = 0
    commits = 0
    for k in range(kills):
        log = os.path.join(d, "loop.log")
        with open(log, "w") as out:
            p = subprocess.Popen([tool, "loop", d], stdout=out, stderr=subprocess.STDOUT)
            time.sleep(rng.uniform(0.5, 4.0))
            tmp_before = glob.glob(os.path.join(d, "*.h5.tmp"))
            p.send_signal(signal.SIGKILL)
            p.wait()
        with open(log) as f:
            commits += sum(1 for line in f if line.startswith("committed"))
        if glob.glob(os.path.join(d, "*.h5.tmp")) or tmp_before:
            mid_write += 1
        v = subprocess.run([tool, "verify", d], capture_output=True, text=True)
        finals = sorted(glob.glob(os.path.join(d, "*.h5")))
        if v.returncode != 0:
            print("kill %d: verify failed:\n%s%s" % (k, v.stdout, v.stderr))
            sys.exit(1)
        print("kill %d: %d final checkpoint(s) valid, tmp present: %s" %
              (k, len(finals), bool(glob.glob(os.path.join(d, "*.h5.tmp")))))
    finals = glob.glob(os.path.join(d, "*.h5"))
    assert finals, "no checkpoint was ever committed"
    assert commits >= 3, "only %d commits: the rotation was not exercised" % commits
    assert mid_write > 0, "no kill landed during a write: the test proved nothing"
    print("%d kills, %d during a write, %d commits, all final files valid" % (kills, mid_write, commits))
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
