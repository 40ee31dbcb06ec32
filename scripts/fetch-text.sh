#!/usr/bin/env bash
# Evaluation text for `imp perplexity` / `imp kld`: Jane Austen's novels (public domain) from
# Debian's r-cran-janeaustenr package, extracted from the R lazy-load database with
# scripts/rdata_text.py and written as UTF-8, one text line per line.
#
#   scripts/fetch-text.sh [DEST]     DEST defaults to ~/.cache/imp/text (or $IMP_TEXT_CACHE)
#
# Writes DEST/<novel>.txt for prideprejudice, emma, persuasion, sensesensibility,
# mansfieldpark, northangerabbey, and DEST/austen.txt (all six, in that order).
# Nothing here is committed to the repository.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-${IMP_TEXT_CACHE:-$HOME/.cache/imp/text}}"
novels=(prideprejudice emma persuasion sensesensibility mansfieldpark northangerabbey)
mkdir -p "$dest"
if [[ -s "$dest/austen.txt" ]]; then
  echo "text already cached in $dest"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download r-cran-janeaustenr >/dev/null)
deb="$(ls "$work"/r-cran-janeaustenr_*.deb)"
dpkg-deb -x "$deb" "$work/x"
rdx="$(find "$work/x" -path '*janeaustenr/data/Rdata.rdx' | head -n 1)"
[[ -n "$rdx" ]] || { echo "fetch-text: no janeaustenr/data/Rdata.rdx in $deb" >&2; exit 1; }
python3 "$here/rdata_text.py" "$rdx" prideprejudice "$work/check.txt"  # fails loudly on a format change
: > "$work/austen.txt"
for n in "${novels[@]}"; do
  python3 "$here/rdata_text.py" "$rdx" "$n" "$dest/$n.txt"
  cat "$dest/$n.txt" >> "$work/austen.txt"
done
mv "$work/austen.txt" "$dest/austen.txt"
echo "wrote ${novels[*]/%/.txt} and austen.txt to $dest ($(wc -c < "$dest/austen.txt") bytes)"
