from untangle.address import display


def test_a_person_is_name_and_address_or_the_address_alone():
    assert display("Nikita Kalyazin", "kalyazin@amazon.com") == "Nikita Kalyazin <kalyazin@amazon.com>"
    assert display("", "kalyazin@amazon.com") == display(None, " kalyazin@amazon.com ") == "kalyazin@amazon.com"
    assert display("Kalyazin, Nikita", "k@a.uk") == "Kalyazin, Nikita <k@a.uk>"  # not quoted: for reading
    assert display(None, None) == ""
