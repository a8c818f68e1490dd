"""Customer contact data masked for back-office staff without the permission to see it (paytrust/redaction.py)."""

from paytrust.redaction import mask_contacts, mask_email, mask_phone


def test_an_email_keeps_its_first_letter_and_domain():
    assert mask_email("budi.santoso@example.com") == "b•••@example.com"
    assert mask_email("") == ""


def test_a_phone_keeps_its_country_code_and_last_three_digits():
    assert mask_phone("+6281234567890") == "+62•••890"
    assert mask_phone("12345") == "•••"


def test_contacts_are_masked_at_any_depth_by_key_and_emails_in_text():
    payload = {
        "customer": {"email": "budi@example.com", "phone": "+6281234567890", "name": "Budi"},
        "payer_email": "siti@bank.co.id",
        "mobile_number": "081234567890",
        "items": [{"note": "send to budi@example.com please", "amount": 150000}],
    }

    masked = mask_contacts(payload)

    assert masked == {
        "customer": {"email": "b•••@example.com", "phone": "+62•••890", "name": "Budi"},
        "payer_email": "s•••@bank.co.id",
        "mobile_number": "081•••890",
        "items": [{"note": "send to b•••@example.com please", "amount": 150000}],
    }
    assert payload["customer"]["email"] == "budi@example.com"  # a copy
