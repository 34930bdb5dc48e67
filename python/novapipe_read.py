"""novapipe's reader for what Lua has no well-kept parser for: TOML files
(through tomllib) and zip archives of OSV advisories (through zipfile).
It prints JSON on stdout.

    python3 novapipe_read.py toml FILE...   {"FILE": {"data": ...} | {"error": "..."}}
    python3 novapipe_read.py zip ARCHIVE    [{"name": "...", "text": "..."}, ...]

A zip that cannot be read is one line on stderr and exit 2.
"""
import json
import sys
import tomllib
import zipfile


def read_toml(paths):
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                out[path] = {"data": tomllib.load(f)}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            out[path] = {"error": str(e)}
    return out


def read_zip(path):
    out = []
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir() and info.filename.endswith(".json"):
                    out.append({"name": info.filename, "text": z.read(info).decode("utf-8", "replace")})
    except (OSError, zipfile.BadZipFile) as e:
        print(f"{path}: not a readable zip archive: {e}", file=sys.stderr)
        sys.exit(2)
    return out


def main(argv):
    if len(argv) >= 3 and argv[1] == "toml":
        result = read_toml(argv[2:])
    elif len(argv) == 3 and argv[1] == "zip":
        result = read_zip(argv[2])
    else:
        print("usage: novapipe_read.py toml FILE... | zip ARCHIVE", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
