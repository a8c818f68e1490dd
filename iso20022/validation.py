"""XSD validation of ISO 20022 documents with lxml (schemas compiled once per directory and message, cached).

By default the schemas are the unmodified copies shipped in `iso20022/xsd/` (provenance and SHA-256 in
`iso20022/xsd/SOURCES.md`); tests pass the official copies' directory (`../shared/iso20022`) explicitly.
The message is read from the document's root namespace (`urn:iso:std:iso:20022:tech:xsd:pain.001.001.09`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from .builders import NAMESPACE_PREFIX

SCHEMA_DIR = Path(__file__).resolve().parent / "xsd"
KNOWN_MESSAGES = ("pain.001.001.09", "pain.001.001.03", "pain.002.001.10", "pain.002.001.03")

# Our own documents and the XSDs are trusted, but never resolve entities or touch the network while parsing.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class Iso20022ValidationError(Exception):
    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(f"{message}: " + "; ".join(errors[:5]))
        self.message = message
        self.errors = errors


@dataclass(frozen=True)
class ValidationResult:
    message: str
    errors: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.errors


@functools.lru_cache(maxsize=16)
def _schema(directory: str, message: str) -> etree.XMLSchema:
    path = Path(directory) / f"{message}.xsd"
    return etree.XMLSchema(etree.parse(str(path), _PARSER))


def load_schema(message: str, schema_dir: Path | str | None = None) -> etree.XMLSchema:
    """The compiled XSD of `message` ("pain.001.001.09", ...) from `schema_dir` (default: the shipped copies)."""
    if message not in KNOWN_MESSAGES:
        raise ValueError(f"unknown message {message!r}; known: {KNOWN_MESSAGES}")
    directory = Path(schema_dir) if schema_dir is not None else SCHEMA_DIR
    return _schema(str(directory.resolve()), message)


def message_of(document) -> str:
    """The message name of a document, from its root element's namespace."""
    root = document.getroot() if isinstance(document, etree._ElementTree) else document
    namespace = etree.QName(root).namespace or ""
    if etree.QName(root).localname != "Document" or not namespace.startswith(NAMESPACE_PREFIX):
        raise ValueError(f"not an ISO 20022 Document: {root.tag!r}")
    return namespace[len(NAMESPACE_PREFIX) :]


def validate(
    document: bytes | str | etree._Element | etree._ElementTree,
    *,
    message: str | None = None,
    schema_dir: Path | str | None = None,
) -> ValidationResult:
    """Validate a document (bytes, a file path, or a parsed tree) against its message's XSD.

    `message` defaults to the one named by the root namespace; pass it to insist on a particular message.
    """
    if isinstance(document, bytes):
        tree = etree.fromstring(document, _PARSER)
    elif isinstance(document, str):
        tree = etree.parse(document, _PARSER).getroot()
    else:
        tree = document
    found = message_of(tree)
    if message is not None and found != message:
        return ValidationResult(message=message, errors=(f"document is a {found}, expected {message}",))
    schema = load_schema(found, schema_dir)
    if schema.validate(tree):
        return ValidationResult(message=found, errors=())
    errors = tuple(f"line {error.line}: {error.message}" for error in schema.error_log)
    return ValidationResult(message=found, errors=errors)


def assert_valid(document, *, message: str | None = None, schema_dir: Path | str | None = None) -> str:
    """Validate or raise `Iso20022ValidationError`; returns the message name."""
    result = validate(document, message=message, schema_dir=schema_dir)
    if not result.valid:
        raise Iso20022ValidationError(f"invalid {result.message}", list(result.errors))
    return result.message
