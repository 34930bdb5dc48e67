#!/bin/sh
# Checks out each labelled project at its labelled commit into CORPUS_DIR,
# one directory per project named OWNER+NAME (what score.lua reads).
#   sh bench/analyze-corpus/fetch.sh CORPUS_DIR
# The list is labels.json's (repo and commit); keep the two in step.
# A checkout already there is left as it is. Needs git and the network
# (CORPUS_GIT_BASE=URL clones from URL/OWNER/NAME instead of GitHub).
set -eu
corpus=${1:?usage: sh bench/analyze-corpus/fetch.sh CORPUS_DIR}
mkdir -p "$corpus"

fetch() {
  repo=$1 commit=$2
  dir="$corpus/$(echo "$repo" | tr / +)"
  if [ -d "$dir" ]; then
    echo "$repo: $dir is there, left as it is"
    return
  fi
  echo "$repo at $commit"
  tmp="$dir.partial"
  rm -rf "$tmp"
  git init -q "$tmp"
  git -C "$tmp" remote add origin "${CORPUS_GIT_BASE:-https://github.com}/$repo"
  # GitHub serves a commit by its sha; a shallow fetch is enough
  if ! git -C "$tmp" fetch -q --depth 1 origin "$commit"; then
    git -C "$tmp" fetch -q origin
  fi
  git -C "$tmp" -c advice.detachedHead=false checkout -q "$commit"
  mv "$tmp" "$dir"
}

fetch fastapi/full-stack-fastapi-template 68adb40d37425f6f8668ec7e5a054500d045e43e
fetch nsidnev/fastapi-realworld-example-app 029eb7781c60d5f563ee8990a0cbfb79b244538c
fetch testdrivenio/fastapi-tdd-docker 13cff4273ad92ac2556b767d182d688f4fce933e
fetch Netflix/dispatch dd2837e82a0bf5565b1b4b4b91ea30b7262d4061
fetch gothinkster/flask-realworld-example-app 4b95fb2227dfeb5dd1a45d89b2bf48630b93fd28
fetch hack4impact/flask-base 811fda1cb350ff7881829914c95cb2b10fbe7525
fetch getredash/redash ca79fe988d81cdac9675b412f3dfcab107bc1fbc
fetch HackSoftware/Django-Styleguide-Example a70ef43d7df03706c1211d4fcfd70b4b0120ba1e
fetch mahmoud/boltons 967864f89791509f9eb36b22b4579d36b72a6df2
fetch pytoolz/toolz 568c2b8393973cd172a466546c9d95779c452438
echo "done: novapipe exec bench/analyze-corpus/score.lua $corpus"
