"""What the web app's forms send, made into what the JSON API's schemas take."""


def form_number(text: str, unit: int = 1) -> int | str | None:
    """A form's number for a schema: a whole number as one (times `unit`), anything else as
    the text it is, for the schema to refuse in words; nothing for an empty field. Only ASCII
    digits are a number: str.isdigit also takes "²" and "٣", which int() refuses."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text) * unit
    return text or None
