"""
Tests for serialgw.wire.rfc2217: the codes agree with RFC 2217 as pyserial's
rfc2217:// client (our interop peer) speaks it, and the encodings built on them.
"""

from __future__ import annotations

from serial import rfc2217 as pyserial
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import SerialSettings
from serialgw.wire import rfc2217 as codes


def byte(value: bytes) -> int:
    """pyserial keeps its codes as one-byte strings."""
    return value[0]


class CodeTests(SynchronousTestCase):
    def test_commandsAsPyserial(self) -> None:
        """Every command number, and the server's answer (+100), is pyserial's."""
        for name in ("SET_BAUDRATE", "SET_DATASIZE", "SET_PARITY", "SET_STOPSIZE", "SET_CONTROL",
                     "NOTIFY_LINESTATE", "NOTIFY_MODEMSTATE", "FLOWCONTROL_SUSPEND", "FLOWCONTROL_RESUME",
                     "SET_LINESTATE_MASK", "SET_MODEMSTATE_MASK", "PURGE_DATA"):
            ours = getattr(codes, name)
            self.assertEqual(ours, byte(getattr(pyserial, name)), name)
            self.assertEqual(ours + codes.SERVER_OFFSET, byte(getattr(pyserial, "SERVER_" + name)), name)
        self.assertEqual((codes.COM_PORT_OPTION, codes.SIGNATURE), (byte(pyserial.COM_PORT_OPTION), 0))

    def test_controlValuesAsPyserial(self) -> None:
        """SET-CONTROL values 0-19 are pyserial's."""
        theirs = {
            "FLOW_OUT_QUERY": "REQ_FLOW_SETTING", "FLOW_OUT_NONE": "USE_NO_FLOW_CONTROL",
            "FLOW_OUT_XONXOFF": "USE_SW_FLOW_CONTROL", "FLOW_OUT_HARDWARE": "USE_HW_FLOW_CONTROL",
            "BREAK_QUERY": "REQ_BREAK_STATE", "BREAK_ON": "BREAK_ON", "BREAK_OFF": "BREAK_OFF",
            "DTR_QUERY": "REQ_DTR", "DTR_ON": "DTR_ON", "DTR_OFF": "DTR_OFF",
            "RTS_QUERY": "REQ_RTS", "RTS_ON": "RTS_ON", "RTS_OFF": "RTS_OFF",
            "FLOW_IN_QUERY": "REQ_FLOW_SETTING_IN", "FLOW_IN_NONE": "USE_NO_FLOW_CONTROL_IN",
            "FLOW_IN_XONXOFF": "USE_SW_FLOW_CONTOL_IN", "FLOW_IN_HARDWARE": "USE_HW_FLOW_CONTOL_IN",
            "FLOW_DCD": "USE_DCD_FLOW_CONTROL", "FLOW_DTR": "USE_DTR_FLOW_CONTROL",
            "FLOW_DSR": "USE_DSR_FLOW_CONTROL",
        }
        self.assertEqual({name: getattr(codes, name) for name in theirs},
                         {name: byte(getattr(pyserial, "SET_CONTROL_" + p)) for name, p in theirs.items()})
        self.assertEqual(sorted(getattr(codes, name) for name in theirs), list(range(20)))

    def test_parityAndStopsizeAsPyserial(self) -> None:
        """SET-PARITY and SET-STOPSIZE values map to pyserial's letters and stop bits, both ways."""
        self.assertEqual(pyserial.RFC2217_PARITY_MAP, codes.PARITY_VALUES)
        self.assertEqual(pyserial.RFC2217_STOPBIT_MAP, codes.STOPSIZE_VALUES)
        self.assertEqual({v: k for k, v in codes.PARITY_VALUES.items()}, codes.PARITY_CODES)
        self.assertEqual({v: k for k, v in codes.STOPSIZE_VALUES.items()}, codes.STOPSIZE_CODES)

    def test_stateBitsAsPyserial(self) -> None:
        """Modem-state and line-state bits are pyserial's masks."""
        self.assertEqual(
            (codes.MODEM_CTS, codes.MODEM_DSR, codes.MODEM_RI, codes.MODEM_CD,
             codes.DELTA_CTS, codes.DELTA_DSR, codes.TRAILING_RI, codes.DELTA_CD),
            (pyserial.MODEMSTATE_MASK_CTS, pyserial.MODEMSTATE_MASK_DSR, pyserial.MODEMSTATE_MASK_RI,
             pyserial.MODEMSTATE_MASK_CD, pyserial.MODEMSTATE_MASK_CTS_CHANGE, pyserial.MODEMSTATE_MASK_DSR_CHANGE,
             pyserial.MODEMSTATE_MASK_RI_CHANGE, pyserial.MODEMSTATE_MASK_CD_CHANGE))
        self.assertEqual(
            (codes.LINE_OVERRUN, codes.LINE_PARITY, codes.LINE_FRAMING, codes.LINE_BREAK),
            (pyserial.LINESTATE_MASK_OVERRUN_ERROR, pyserial.LINESTATE_MASK_PARTIY_ERROR,
             pyserial.LINESTATE_MASK_FRAMING_ERROR, pyserial.LINESTATE_MASK_BREAK_DETECT))
        self.assertEqual((codes.MODEM_LINES, codes.LINE_ERRORS), (0xF0, 0x1E))

    def test_ciscoBaud(self) -> None:
        """Cisco's one-byte SET-BAUDRATE indexes 3-16 are 300 to 460800 baud, and back."""
        self.assertEqual((codes.CISCO_BAUD[3], codes.CISCO_BAUD[8], codes.CISCO_BAUD[14], codes.CISCO_BAUD[16]),
                         (300, 9600, 115200, 460800))
        self.assertEqual(sorted(codes.CISCO_BAUD), list(range(3, 17)))
        self.assertEqual({codes.CISCO_INDEX[b] for b in codes.CISCO_BAUD.values()}, set(codes.CISCO_BAUD))


class EncodingTests(SynchronousTestCase):
    def test_modemDelta(self) -> None:
        """Deltas: CTS, DSR and CD on any change, RI only on its trailing edge."""
        cases = [
            (0x00, 0x00, 0x00),
            (0x00, 0x10, 0x01),
            (0x10, 0x00, 0x01),
            (0x00, 0x20, 0x02),
            (0x00, 0x40, 0x00),  # RI rising: no delta
            (0x40, 0x00, 0x04),  # RI falling: trailing edge
            (0x80, 0x00, 0x08),
            (0x00, 0xB0, 0x0B),
            (0xF0, 0x00, 0x0F),
        ]
        self.assertEqual([codes.modemDelta(a, b) for a, b, _ in cases], [d for _, _, d in cases])

    def test_flowCode(self) -> None:
        """Flow control in effect as SET-CONTROL: none 1/14, XON/XOFF 2/15, RTS/CTS 3/16 (it wins over both)."""
        settings = [SerialSettings(), SerialSettings(xonxoff=True), SerialSettings(rtscts=True),
                    SerialSettings(xonxoff=True, rtscts=True)]
        self.assertEqual([codes.flowCode(s, inbound=False) for s in settings], [1, 2, 3, 3])
        self.assertEqual([codes.flowCode(s, inbound=True) for s in settings], [14, 15, 16, 16])

    def test_modemLineCode(self) -> None:
        """DTR on/off is 8/9, RTS on/off 11/12."""
        self.assertEqual([codes.modemLineCode(n, on) for n in ("dtr", "rts") for on in (True, False)],
                         [8, 9, 11, 12])
