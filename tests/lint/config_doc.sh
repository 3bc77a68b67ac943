#!/usr/bin/env bash
# config_doc.sh PEPRIME_BIN DOC: fails, showing the difference, if DOC (docs/config.md) is not
# what `peprime config --doc` prints from the key table in src/core/config.c. After changing a
# key: build/peprime config --doc > docs/config.md
set -euo pipefail
bin=$1 doc=$2
if ! diff -u "$doc" <("$bin" config --doc); then
  echo "$doc is out of date: regenerate it with '$bin config --doc > $doc'"
  exit 1
fi
echo "$doc matches peprime config --doc"
