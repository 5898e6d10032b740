#!/usr/bin/env python3
"""Writes /usr/local/bin/barman-cloud-* into an image root from the entry points of the
Barman wheel installed in it (pip --target installs no scripts): what CloudNativePG's
instance manager runs to archive WAL and take and restore base backups.

    barman-scripts.py ROOT
"""

import configparser
import glob
import os
import sys

root = sys.argv[1]
site = os.path.join(root, "usr/local/lib/python3.11/dist-packages")
[entry_points] = glob.glob(os.path.join(site, "barman-*.dist-info/entry_points.txt"))
config = configparser.ConfigParser()
config.read(entry_points)
written = []
for name, target in config["console_scripts"].items():
    if not name.startswith("barman-cloud-"):
        continue
    module, function = target.split(":")
    path = os.path.join(root, "usr/local/bin", name)
    with open(path, "w") as script:
        script.write(
            "#!/usr/bin/python3\n"
            "import sys\n"
            f"from {module.strip()} import {function.strip()}\n"
            f"sys.exit({function.strip()}())\n"
        )
    os.chmod(path, 0o755)
    written.append(name)
if "barman-cloud-wal-archive" not in written:
    sys.exit(f"no barman-cloud-wal-archive entry point in {entry_points}")
print(" ".join(sorted(written)), file=sys.stderr)
