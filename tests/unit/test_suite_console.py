from untangle.suite import _Console


def test_serial_log_text_has_no_carriage_returns_whatever_the_firmware_wrote():
    console = _Console("n0nce")
    console.feed(b"Probing EDD (edd=off to disable)... ok\r\r\n\x1b[2J")
    console.feed(b"Booting from ROM...\rok 1 x\r\n[    0.1] kernel\r\n")
    text = console.text()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == ["Probing EDD (edd=off to disable)... ok", "Booting from ROM...",
                                 "ok 1 x", "[    0.1] kernel"]


def test_guest_that_halts_after_its_end_marker_ends_after_the_grace_not_the_boot_budget(tmp_path):
    # A tinyconfig kernel has no ACPI: the guest halts and QEMU stays up. The reader must
    # bring its deadline forward at the end marker, or the run waits out the whole budget.
    from untangle.suite import _run_qemu
    console = _Console("n0nce")
    guest = ["sh", "-c", "echo REVIEWAPP-BEGIN n0nce; echo REVIEWAPP-END n0nce rc=0; exec sleep 120"]
    outcome = _run_qemu(guest, console, timeout=100, sandbox="unshare", ro=[], grace=0.5)
    assert (outcome, console.end_rc) == ("no-exit", 0)


def test_guest_silent_past_the_budget_is_a_timeout(tmp_path):
    from untangle.suite import _run_qemu
    console = _Console("n0nce")
    outcome = _run_qemu(["sh", "-c", "echo booting; exec sleep 120"], console, timeout=1,
                        sandbox="unshare", ro=[], grace=0.5)
    assert (outcome, console.end_rc) == ("timeout", None)
