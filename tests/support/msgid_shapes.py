"""Every shape a message-id reference takes in mail, prose and URLs, naming MID: the message-id
parser (untangle.msgid) and the reference parser built on it (untangle.lore.parse_ref) read them all."""
MID = "20250404154352.23078-1-kalyazin@amazon.com"

SHAPES = [
    MID, f"<{MID}>", f"  <{MID}>\n", f"mid:{MID}", f"id:{MID}", f"RFC822MSGID:{MID}",
    MID.replace("@", "%40"), f"%3C{MID}%3E",
    f"https://lore.kernel.org/all/{MID}/",
    f"https://lore.kernel.org/linux-kselftest/{MID}/T/#u",
    f"https://lore.kernel.org/kvm/{MID}/t.mbox.gz",
    f"https://lore.kernel.org/r/{MID}",
    f"https://patch.msgid.link/{MID}",
    f"http://127.0.0.1:8080/all/{MID}/T/#u",
    "https://lore.kernel.org/all/" + MID.replace("@", "%40") + "/raw",
    f"https://lore.kernel.org/all/%3C{MID}%3E/",
    f"https://patchwork.kernel.org/project/kvm/patch/{MID}/",
    f"https://lore.kernel.org/kvm/{MID}/).",  # closing a parenthesis in prose
]
