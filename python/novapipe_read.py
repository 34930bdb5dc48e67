"""novapipe's reader for what Lua has no well-kept parser for: TOML files
(through tomllib) and zip archives of OSV advisories (through zipfile).
It prints JSON on stdout.

    python3 novapipe_read.py toml FILE...   {"FILE": {"data": ...} | {"error": "..."}}
    python3 novapipe_read.py zip ARCHIVE [NAME...]
        {"records": N, "entries": [{"name": "...", "text": "..."}, ...]}

With package names, only the records that name one of them (in its PEP 503
form) among their `affected` packages are returned, so that a whole OSV
export need not cross into Lua; `records` counts every record read. A zip
that cannot be read, or a record that is not JSON or has no string `id`, is
one line on stderr and exit 2.
"""
import json
import re
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


def normal_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def names_in(record):
    affected = record.get("affected")
    for a in affected if isinstance(affected, list) else []:
        package = a.get("package") if isinstance(a, dict) else None
        if isinstance(package, dict) and isinstance(package.get("name"), str):
            yield normal_name(package["name"])


def read_zip(path, names):
    wanted = {normal_name(n) for n in names}
    out, count = [], 0
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                text = z.read(info).decode("utf-8", "replace")
                count += 1
                if not wanted:
                    out.append({"name": info.filename, "text": text})
                    continue
                try:
                    record = json.loads(text)
                except ValueError as e:
                    print(f"{path}:{info.filename}: not valid JSON: {e}", file=sys.stderr)
                    sys.exit(2)
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    print(f"{path}:{info.filename}: not an OSV advisory: no 'id'", file=sys.stderr)
                    sys.exit(2)
                if any(n in wanted for n in names_in(record)):
                    out.append({"name": info.filename, "text": text})
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        print(f"{path}: not a readable zip archive: {e}", file=sys.stderr)
        sys.exit(2)
    return {"records": count, "entries": out}


def main(argv):
    if len(argv) >= 3 and argv[1] == "toml":
        result = read_toml(argv[2:])
    elif len(argv) >= 3 and argv[1] == "zip":
        result = read_zip(argv[2], argv[3:])
    else:
        print("usage: novapipe_read.py toml FILE... | zip ARCHIVE [NAME...]", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
