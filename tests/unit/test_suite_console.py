from untangle.suite import _Console


def test_serial_log_text_has_no_carriage_returns_whatever_the_firmware_wrote():
    console = _Console("n0nce")
    console.feed(b"Probing EDD (edd=off to disable)... ok\r\r\n\x1b[2J")
    console.feed(b"Booting from ROM...\rok 1 x\r\n[    0.1] kernel\r\n")
    text = console.text()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == ["Probing EDD (edd=off to disable)... ok", "Booting from ROM...",
                                 "ok 1 x", "[    0.1] kernel"]
