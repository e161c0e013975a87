"""Template protection at rest: the AES-GCM key (from `EDGEFX_KEY_FILE` or created 0600 once) and the cipher whose
associated data binds each ciphertext to its subject, template and recognizer."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edgefx.runtime.errors import TemplateKeyError, TemplateKeyMismatch

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per encryption (2^-32 collision bound far beyond a gallery's size)
KEY_CHECK = b"edgefx gallery key check v1"


CREDENTIAL = "edgefx.gallery.key"  # the systemd credential's name (LoadCredential=edgefx.gallery.key)


def default_key_path(db_path: Path) -> Path:
    """The systemd credential when the service was given one, else `gallery.key` beside the database."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL).is_file():
        return Path(credentials) / CREDENTIAL
    return db_path.parent / "gallery.key"


def parse_key(raw: bytes, path: Path) -> bytes:
    """32 raw bytes, or 64 hex characters (`openssl rand -hex 32`); TemplateKeyError for anything else."""
    if len(raw) == KEY_BYTES:
        return raw
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise TemplateKeyError(f"the template key {path} must hold 32 bytes or 64 hex characters "
                               f"(e.g. `openssl rand -hex 32 > {path}`)")
    return key


def read_key(path: Path) -> bytes | None:
    """The key in `path`, or None if there is no such file."""
    try:
        return parse_key(path.read_bytes(), path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TemplateKeyError(f"cannot read the template key {path}: {exc.strerror or exc}") from None


def create_key(path: Path) -> bytes:
    """A new random key written to `path` with mode 0600 (never over an existing file)."""
    key = secrets.token_bytes(KEY_BYTES)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.hex().encode("ascii") + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(draft, path)  # appears whole or not at all; fails if another process made one first
    except FileExistsError:  # another process made it first: use theirs
        found = read_key(path)
        assert found is not None
        return found
    except OSError as exc:
        raise TemplateKeyError(f"cannot create the template key {path}: {exc.strerror or exc}") from None
    finally:
        draft.unlink(missing_ok=True)
    log.warning("created a new template key %s (mode 0600); back it up and keep it off the device's data volume "
                "(EDGEFX_KEY_FILE, systemd LoadCredential=): without it the enrolled templates cannot be read", path)
    return key


def associated_data(subject_id: str, template_id: str, recognizer: str, kind: str) -> bytes:
    """What a ciphertext is bound to: moving it to another row, subject or recognizer makes decryption fail."""
    return "\x1f".join(("edgefx", kind, subject_id, template_id, recognizer)).encode("utf-8")


class TemplateCipher:
    """AES-GCM with a random nonce per message; stored form = nonce || ciphertext || tag."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """The plaintext; TemplateKeyMismatch if the key is wrong or the row was moved or altered."""
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise TemplateKeyMismatch("a template does not decrypt with the configured key (another key, or a row "
                                      "moved or altered); check EDGEFX_KEY_FILE") from None

    def key_check(self) -> bytes:
        """A token stored once in the database, so that a wrong key is found before any template is touched."""
        return self.encrypt(KEY_CHECK, b"edgefx key check")

    def verify_key_check(self, token: bytes, where: Path) -> None:
        try:
            ok = self.decrypt(token, b"edgefx key check") == KEY_CHECK
        except TemplateKeyMismatch:
            ok = False
        if not ok:
            raise TemplateKeyMismatch(f"the configured template key is not the key the gallery {where} was "
                                      "encrypted with; set EDGEFX_KEY_FILE to that key (nothing was read or changed)")
