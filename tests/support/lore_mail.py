"""The real kernel mails beside the repo (../shared/lore), read as email messages."""
import email
import email.policy
import mailbox


from tests.support.shared import LORE, require


def read_mails(name: str) -> list[email.message.EmailMessage]:
    """Every message of LORE/name (an .mbox, or a single .eml); skips the test if it is absent."""
    path = LORE / name
    require(path)
    if path.suffix == ".eml":
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)]
    box = mailbox.mbox(str(path), factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default))
    return list(box)


def msgid_of(msg) -> str:
    return str(msg["message-id"]).strip().strip("<>")


def plain_body(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()
