#!/usr/bin/env python3
"""Writes an OCI image archive (an oci-layout tarball, as `ctr images import`,
`skopeo copy oci-archive:` and `podman load` read it) from directories and tarballs,
without a container engine. Used by hack/images.sh --offline.

    hack/oci-image.py --name ghcr.io/agora-social/users:0.1.0 --out users.tar \
        --layer-tar base.tar --layer-dir stage/ --user 65532:65532 \
        --entrypoint /usr/local/bin/app --port 8080 --port 9090

Layers are stored uncompressed (`application/vnd.oci.image.layer.v1.tar`): the archive is
imported on this machine, so gzip would only cost time. Directory layers are written
reproducibly: sorted, mtime 0, owned by 0:0 unless --owner says otherwise.
"""

import argparse
import hashlib
import json
import os
import shutil
import tarfile
import tempfile

LAYER = "application/vnd.oci.image.layer.v1.tar"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# Linux capability numbers for --file-cap.
CAPS = {"net_bind_service": 10, "net_raw": 13}


def file_cap_xattr(names):
    """The security.capability value (VFS_CAP_REVISION_2, effective) granting caps."""
    permitted = 0
    for name in names:
        permitted |= 1 << CAPS[name]
    words = [0x02000001, permitted & 0xFFFFFFFF, 0, permitted >> 32, 0]
    return b"".join(w.to_bytes(4, "little") for w in words)


def dir_layer(src, dest, owners, caps):
    """A tarball of the tree under src, paths relative to it, in a fixed order."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src)
                info = tar.gettarinfo(path, arcname=rel)
                info.mtime = 0
                uid, gid = owners.get(rel, (0, 0))
                info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
                if rel in caps:
                    # containerd's unpacker applies PAX SCHILY.xattr.* records.
                    value = file_cap_xattr(caps[rel]).decode("utf-8", "surrogateescape")
                    info.pax_headers = {"SCHILY.xattr.security.capability": value}
                if info.isfile():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="full reference, e.g. docker.io/library/x:1")
    p.add_argument("--out", required=True, help="the archive to write")
    p.add_argument("--layer-tar", action="append", default=[], dest="layers",
                   type=lambda v: ("tar", v), help="an uncompressed tarball layer")
    p.add_argument("--layer-dir", action="append", default=[], dest="layers",
                   type=lambda v: ("dir", v), help="a directory, archived as one layer")
    p.add_argument("--owner", action="append", default=[],
                   help="PATH=UID:GID for a path of a --layer-dir (default 0:0)")
    p.add_argument("--file-cap", action="append", default=[],
                   help="PATH=CAP[,CAP] file capabilities (+ep) for a path of a --layer-dir")
    p.add_argument("--user", default="")
    p.add_argument("--entrypoint", action="append", default=None)
    p.add_argument("--cmd", action="append", default=None)
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--workdir", default="/")
    p.add_argument("--port", action="append", default=[])
    p.add_argument("--volume", action="append", default=[])
    p.add_argument("--stop-signal", default="")
    p.add_argument("--label", action="append", default=[])
    a = p.parse_args()

    owners = {}
    for spec in a.owner:
        path, ids = spec.split("=", 1)
        uid, gid = ids.split(":", 1)
        owners[path.strip("/")] = (int(uid), int(gid))

    caps = {}
    for spec in a.file_cap:
        path, names = spec.split("=", 1)
        caps[path.strip("/")] = names.split(",")

    repo_tag = a.name.rsplit("/", 1)[-1]
    if ":" not in repo_tag:
        p.error("--name needs a tag")
    tag = repo_tag.split(":", 1)[1]

    with tempfile.TemporaryDirectory(prefix="oci-image.") as tmp:
        blobs = os.path.join(tmp, "blobs", "sha256")
        os.makedirs(blobs)

        def add_blob(path):
            digest = sha256_file(path)
            size = os.path.getsize(path)
            shutil.move(path, os.path.join(blobs, digest))
            return f"sha256:{digest}", size

        def add_json(obj):
            path = os.path.join(tmp, "blob.json")
            with open(path, "wb") as f:
                f.write(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())
            return add_blob(path)

        layers = []
        for i, (kind, src) in enumerate(a.layers):
            path = os.path.join(tmp, f"layer{i}.tar")
            if kind == "dir":
                dir_layer(src, path, owners, caps)
            else:
                shutil.copyfile(src, path)
            digest, size = add_blob(path)
            # Uncompressed: the diff id is the blob digest.
            layers.append({"mediaType": LAYER, "digest": digest, "size": size})

        config = {"Env": a.env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                  "WorkingDir": a.workdir}
        if a.user:
            config["User"] = a.user
        if a.entrypoint:
            config["Entrypoint"] = a.entrypoint
        if a.cmd:
            config["Cmd"] = a.cmd
        if a.port:
            config["ExposedPorts"] = {f"{port}/tcp" if "/" not in port else port: {} for port in a.port}
        if a.volume:
            config["Volumes"] = {v: {} for v in a.volume}
        if a.stop_signal:
            config["StopSignal"] = a.stop_signal
        if a.label:
            config["Labels"] = dict(label.split("=", 1) for label in a.label)
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/oci-image.py"}
                        for _ in layers],
        }
        config_digest, config_size = add_json(image_config)
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
                    "layers": layers}
        manifest_digest, manifest_size = add_json(manifest)
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": MANIFEST, "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            # containerd names the image from the first, other tools from the second.
            "annotations": {"io.containerd.image.name": a.name,
                            "org.opencontainers.image.ref.name": tag}}]}
        with open(os.path.join(tmp, "index.json"), "w") as f:
            json.dump(index, f)
        with open(os.path.join(tmp, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

        out_tmp = a.out + ".partial"
        with tarfile.open(out_tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in ["oci-layout", "index.json", "blobs"]:
                tar.add(os.path.join(tmp, name), arcname=name)
        os.replace(out_tmp, a.out)
    print(f"{a.name} {manifest_digest}")


if __name__ == "__main__":
    main()
