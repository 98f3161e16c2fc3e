#!/usr/bin/env bash
# Build the root file system of a local stand-in for the AWS Lambda Python base image
# (public.ecr.aws/lambda/python:<version>-x86_64), as a tar that `docker import` takes.
#
#   tests/sam/build_base_image.sh OUT.tar PYTHON_PREFIX AWSLAMBDARIC_VERSION [APT_CACHE_DIR]
#
# Why a stand-in: no container registry can be reached here, so the real image cannot be pulled.
# It is Debian (debootstrap), not Amazon Linux; what SAM CLI and the function rely on is the same:
# the interpreter in /var/lang, awslambdaric behind /var/runtime/bootstrap, the code in /var/task,
# and /bin/sh for the `RUN` of the image SAM CLI builds on top. docs/sam-local.md says more.
#
# PYTHON_PREFIX is an installed CPython of the template's Runtime version (pyenv's, on this
# machine image); it is copied to /var/lang. Needs root (debootstrap), Debian's mirror and PyPI.
set -euo pipefail

out=$1
python_prefix=$2
ric_version=$3
apt_cache=${4:-}
suite=bookworm

mirror=$(awk '$1 == "URIs:" {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mirror=${mirror:-$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d "${TMPDIR:-/tmp}/login-etl-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# minbase plus what CPython's extension modules link against (ssl, ctypes, sqlite3, readline ...).
libs=libssl3,libffi8,libsqlite3-0,libexpat1,libncursesw6,libreadline8,libgdbm6,libuuid1
cache_args=()
if [ -n "$apt_cache" ]; then mkdir -p "$apt_cache"; cache_args=(--cache-dir="$apt_cache"); fi
echo "debootstrap $suite (minbase) from $mirror" >&2
debootstrap --variant=minbase --include="$libs" "${cache_args[@]}" "$suite" "$root" "$mirror" >&2

# The interpreter, without its test suite, its static library and tkinter (nothing here uses them).
mkdir -p "$root/var/lang" "$root/var/runtime" "$root/var/task" "$root/opt"
tar -C "$python_prefix" \
  --exclude='./lib/python3.*/test' --exclude='./lib/python3.*/idlelib' \
  --exclude='./lib/python3.*/tkinter' --exclude='./lib/python3.*/turtledemo' \
  --exclude='./lib/libpython3*.a' --exclude='./lib/python3.*/config-*/*.a' \
  -cf - . | tar -C "$root/var/lang" -xf -
version=$("$root/var/lang/bin/python3" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ln -sf "python$version" "$root/var/lang/bin/python"
# libpython lives in /var/lang/lib, as in the AWS image; the loader must find it without any
# LD_LIBRARY_PATH (the copied binary's RPATH points at the build machine's prefix).
echo /var/lang/lib >"$root/etc/ld.so.conf.d/var-lang.conf"
chroot "$root" /sbin/ldconfig

# awslambdaric from PyPI, where the AWS image keeps it: /var/runtime.
"$python_prefix/bin/python3" -m pip install --quiet --no-compile --disable-pip-version-check --root-user-action=ignore \
  --target "$root/var/runtime" "awslambdaric==$ric_version" >&2

# The AWS image's bootstrap: the emulator runs /var/runtime/bootstrap with the handler in $_HANDLER.
cat >"$root/var/runtime/bootstrap" <<EOF
#!/bin/sh
export PYTHONPATH="\${LAMBDA_TASK_ROOT:-/var/task}:/opt/python:/var/runtime\${PYTHONPATH:+:\$PYTHONPATH}"
exec /var/lang/bin/python$version -m awslambdaric "\$_HANDLER"
EOF
chmod 755 "$root/var/runtime/bootstrap"
# The AWS image's entry point, for a plain `docker run` (SAM CLI replaces it with its emulator).
cat >"$root/lambda-entrypoint.sh" <<'EOF'
#!/bin/sh
export _HANDLER="$1"
exec /var/runtime/bootstrap
EOF
chmod 755 "$root/lambda-entrypoint.sh"

# Smaller: no documentation, locales or package lists (the image never runs apt).
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
  "$root"/var/cache/apt/archives/*.deb
# Proof that the interpreter finds every library it links against inside the image.
chroot "$root" /usr/bin/env -i PYTHONPATH=/var/runtime "/var/lang/bin/python$version" \
  -c 'import ssl, ctypes, sqlite3, zlib, bz2, lzma, uuid, awslambdaric' >&2

tar -C "$root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
