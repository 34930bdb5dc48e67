"""novapipe's fetcher of an OSV export (a zip of OSV JSON records, such as
https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip), through
the standard library only: urllib, which honours http_proxy, https_proxy
and no_proxy from the environment, and zipfile.

    python3 novapipe_advisories.py fetch SOURCE DEST

SOURCE is an http(s):// or file:// URL, or a path. DEST is a new file in a
directory novapipe made for it (created exclusively: never through what is
already there). The body is streamed to DEST in pieces, its sha256 computed
on the way; then DEST is verified: a zip archive whose every *.json entry is
an OSV record (a JSON object with a string `id` and `modified`), at least
one. On success it prints {"records": N, "bytes": N, "sha256": "..."}; on
any failure one line on stderr (what, where, what to do) and exit 2.
"""
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import urllib.error
import urllib.request
import zipfile

CHUNK = 1 << 20
TIMEOUT = 60  # seconds without a byte from the server


class Refusal(Exception):
    pass


def describe_reason(reason):
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve (no network or DNS?)"
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused (nothing listens there)"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {TIMEOUT} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


def copy(src, out, digest, source):
    total = 0
    while True:
        try:
            chunk = src.read(CHUNK)
        except http.client.IncompleteRead as e:
            raise Refusal(f"{source}: the download was cut short after {total + len(e.partial)} bytes "
                          "(the connection closed early): try again, or use --from a local copy")
        except (TimeoutError, socket.timeout):
            raise Refusal(f"{source}: the download stalled (no data within {TIMEOUT} s) after {total} bytes: "
                          "try again, or use --from a local copy")
        except OSError as e:
            raise Refusal(f"{source}: the download failed after {total} bytes: {describe_reason(e)}: "
                          "try again, or use --from a local copy")
        if not chunk:
            return total
        out.write(chunk)
        digest.update(chunk)
        total += len(chunk)


def fetch(source, dest):
    """Streams SOURCE into DEST; returns (bytes, sha256)."""
    digest = hashlib.sha256()
    hint = "check the URL and the proxy settings (https_proxy, no_proxy), or use --from a local copy"
    with open(dest, "xb") as out:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
            request = urllib.request.Request(source, headers={"User-Agent": "novapipe"})
            try:
                response = urllib.request.urlopen(request, timeout=TIMEOUT)
            except urllib.error.HTTPError as e:
                raise Refusal(f"{source}: the server answered HTTP {e.code} {e.reason}: {hint}")
            except urllib.error.URLError as e:
                raise Refusal(f"{source}: cannot download: {describe_reason(e.reason)}: {hint}")
            except (TimeoutError, socket.timeout):
                raise Refusal(f"{source}: cannot download: no answer within {TIMEOUT} s: {hint}")
            except (ValueError, http.client.HTTPException, OSError) as e:
                raise Refusal(f"{source}: cannot download: {describe_reason(e)}: {hint}")
            with response:
                expected = response.headers.get("Content-Length")
                total = copy(response, out, digest, source)
            if expected is not None and expected.isdigit() and int(expected) != total:
                raise Refusal(f"{source}: the download was cut short: {total} of {expected} bytes "
                              "(the connection closed early): try again, or use --from a local copy")
        else:
            try:
                src = open(source, "rb")
            except OSError as e:
                raise Refusal(f"{source}: cannot read: {describe_reason(e)} (give a URL or the path of an all.zip)")
            with src:
                total = copy(src, out, digest, source)
        out.flush()
        os.fsync(out.fileno())
    return total, digest.hexdigest()


def verify(source, path):
    """The number of OSV records in the zip at path; raises Refusal."""
    what = f"{source}: not an OSV export"
    count = 0
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                try:
                    record = json.loads(z.read(info))
                except (ValueError, UnicodeDecodeError) as e:
                    raise Refusal(f"{what}: {info.filename} is not valid JSON ({e}): refused, nothing changed")
                if not isinstance(record, dict) or not isinstance(record.get("id"), str) \
                        or not isinstance(record.get("modified"), str):
                    raise Refusal(f"{what}: {info.filename} is not an OSV record (no string 'id' and 'modified'): "
                                  "refused, nothing changed")
                if "affected" in record and not isinstance(record["affected"], list):
                    raise Refusal(f"{what}: {info.filename}: 'affected' is not a list: refused, nothing changed")
                count += 1
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise Refusal(f"{what}: not a readable zip archive ({e}; a download cut short?): refused, nothing changed")
    if count == 0:
        raise Refusal(f"{what}: the archive holds no OSV records: refused, nothing changed")
    return count


def main(argv):
    if len(argv) != 4 or argv[1] != "fetch":
        print("usage: novapipe_advisories.py fetch SOURCE DEST", file=sys.stderr)
        return 2
    source, dest = argv[2], argv[3]
    try:
        size, sha256 = fetch(source, dest)
        records = verify(source, dest)
    except Refusal as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    json.dump({"records": records, "bytes": size, "sha256": sha256}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
