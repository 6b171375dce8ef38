"""Inside the guest (the BLE boot test): one virtual controller of ``btvirt -s`` on a pseudo
terminal, for ``btattach`` to attach with the kernel's hci_uart (H4).

Debian's arm64 kernel has no hci_vhci, the usual way to put btvirt's controllers in the
kernel; hci_uart it has (the Pi's built-in controller uses it). ``btvirt -s`` makes a
controller for each connection to its socket, all in one process, so they hear each other's
adverts. This relays bytes between one such connection and a pty, whose terminal side is
linked at LINK once the controller exists.

    python3 ble_relay.py /tmp/bt-server-le /run/msgflo-test-pty0
"""

import os
import select
import socket
import sys
import tty


def main(server: str, link: str) -> None:
    terminal, side = os.openpty()
    tty.setraw(side)  # kept open: the pty hangs up when no one holds its terminal side
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as controller:
        controller.connect(server)
        os.symlink(os.ttyname(side), link)
        while True:
            ready, _, _ = select.select([terminal, controller.fileno()], [], [])
            if terminal in ready:
                data = os.read(terminal, 4096)
                if not data:
                    return
                controller.sendall(data)
            if controller.fileno() in ready:
                data = controller.recv(4096)
                if not data:
                    return
                os.write(terminal, data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
