# Nightly export of paid invoices.
def export(invoices, sink):
    for inv in invoices:
        if inv["status"] == "paid":
            sink.write(inv)
    # TODO: retry failed writes with backoff
