"""The manual gateway's account configuration: the merchant's bank details, shown to payers on the instructions
page (so they are account configuration, not write-only credentials; docs/adr/0052-manual-bank-transfer.md).

    {"bank_name": "Bank Central Asia", "account_name": "PT Acme Indonesia", "account_number": "1234567890",
     "swift_code": "CENAIDJA",                       # optional
     "instructions": {"IDR": "Transfer from any Indonesian bank …", "USD": "…"}}   # optional, per currency
"""

from __future__ import annotations

from paytrust.errors import ValidationError

REQUIRED = ("bank_name", "account_name", "account_number")
OPTIONAL = ("swift_code",)
TEXT_MAX = 140
INSTRUCTIONS_MAX = 1000


def _text(value: object, *, param: str, limit: int, required: bool) -> str:
    if value is None or value == "":
        if required:
            raise ValidationError(f"{param} is required.", code="parameter_missing", param=param)
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValidationError(
            f"{param} must be a non-blank string of at most {limit} characters.", param=param
        )
    return value.strip()


def clean_bank_details(value: object, *, currencies: list[str], param: str = "bank_details") -> dict:
    """The validated bank details (unknown keys refused; instructions only for the account's currencies)."""
    if not isinstance(value, dict):
        raise ValidationError(
            "A manual bank-transfer account needs bank_details: bank_name, account_name, account_number.",
            code="parameter_missing" if value is None else "parameter_invalid",
            param=param,
        )
    unknown = [key for key in value if key not in (*REQUIRED, *OPTIONAL, "instructions")]
    if unknown:
        raise ValidationError(
            f"Unknown bank detail {unknown[0]!r}.", code="parameter_unknown", param=f"{param}.{unknown[0]}"
        )
    cleaned: dict = {}
    for key in REQUIRED + OPTIONAL:
        text = _text(value.get(key), param=f"{param}.{key}", limit=TEXT_MAX, required=key in REQUIRED)
        if text:
            cleaned[key] = text
    instructions = value.get("instructions") or {}
    if not isinstance(instructions, dict):
        raise ValidationError(
            "instructions must be an object: currency -> text.", param=f"{param}.instructions"
        )
    cleaned_instructions = {}
    for currency, text in instructions.items():
        where = f"{param}.instructions.{currency}"
        if currency not in currencies:
            raise ValidationError(
                f"Instructions for {currency!r}, which is not one of this account's currencies.",
                code="parameter_invalid",
                param=where,
            )
        cleaned_instructions[currency] = _text(text, param=where, limit=INSTRUCTIONS_MAX, required=True)
    if cleaned_instructions:
        cleaned["instructions"] = dict(sorted(cleaned_instructions.items()))
    return cleaned
