"""Invoice helpers."""


def invoice_total(lines, vat_rate=0.2):
    """Return the invoice total including VAT."""
    net = sum(quantity * price for quantity, price in lines)
    return round(net * (1 + vat_rate), 2)
