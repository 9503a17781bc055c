#!/usr/bin/env bash
# GDK custom build (gdk-config.json): cross-compiles the component for the device
# architectures in DEVICE_TARGETS and lays out what GDK publishes and greengrass-cli deploys:
#   greengrass-build/artifacts/<ComponentName>/<ComponentVersion>/rust-component-<arch>
#   greengrass-build/recipes/recipe.yaml
# GDK does not copy or change anything for a custom build, so this script does it all.
#
#   DEVICE_TARGETS="armv7-unknown-linux-gnueabihf" gdk component build
#   DEVICE_TARGETS="aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf" bash build.sh
#
# Each target needs its Rust standard library (`rustup target add <triple>`) and a linker
# (.cargo/config.toml names the Debian/Ubuntu cross gcc). Publishing to the cloud needs an
# artifact for every manifest of recipe.yaml: build all its architectures, or delete the
# manifests you do not ship.
set -euo pipefail
cd "$(dirname "$0")"

NAME=com.example.RustComponent
VERSION=1.0.0 # keep equal to gdk-config.json and recipe.yaml
DEVICE_TARGETS=${DEVICE_TARGETS:-aarch64-unknown-linux-gnu}

out=greengrass-build/artifacts/$NAME/$VERSION
rm -rf greengrass-build
mkdir -p "$out" greengrass-build/recipes
for target in $DEVICE_TARGETS; do
    case $target in
        aarch64-*) arch=aarch64 ;;
        armv7-* | arm-*) arch=arm ;;
        x86_64-*) arch=amd64 ;;
        *) echo "no recipe manifest for $target" >&2; exit 1 ;;
    esac
    # [profile.release] in Cargo.toml is the size profile (LTO, opt-level "z", panic=abort, strip).
    cargo build --release --target "$target"
    cp "target/$target/release/rust-component" "$out/rust-component-$arch"
done
cp recipe.yaml greengrass-build/recipes/recipe.yaml
ls -l "$out"
