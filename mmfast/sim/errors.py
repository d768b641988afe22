"""The venue's error codes used by the simulator, and the exception that carries them."""

from __future__ import annotations

ACCOUNT_NOT_FOUND = 21100
INVALID_ACCOUNT_INDEX = 21102
INVALID_NONCE = 21104
BATCH_NONCE_NOT_INCREASING = 21105
API_KEY_NOT_FOUND = 21109
INVALID_API_KEY_INDEX = 21110
INVALID_SIGNATURE = 21120
BATCH_MULTIPLE_OWNER = 21121
TX_NOT_FOUND = 21500
INVALID_TX_INFO = 21501
UNSUPPORTED_TX_TYPE = 21505
TOO_MANY_PENDING_TXS = 21506
INVALID_TX_TYPE_FOR_ACCOUNT = 21511
TX_INFO_TYPE_LENGTH_MISMATCH = 21513
MAX_BATCH_TX = 21514
INACTIVE_CANCEL = 21600
ORDER_BOOK_FULL = 21601
INVALID_MARKET_INDEX = 21602
INVALID_ORDER_INDEX = 21700
INVALID_BASE_AMOUNT = 21701
INVALID_PRICE = 21702
INVALID_IS_ASK = 21703
INVALID_ORDER_TYPE = 21704
INVALID_TIME_IN_FORCE = 21705
INVALID_ORDER_AMOUNT = 21706
INVALID_ORDER_OWNER = 21707
UNSUPPORTED_ORDER_TYPE = 21710
INVALID_ORDER_EXPIRY = 21711
INVALID_CANCEL_ALL_TIF = 21713
INVALID_CANCEL_ALL_TIME = 21714
INACTIVE_ORDER = 21715
MAX_ORDERS_PER_MARKET = 21718
MAX_PENDING_ORDERS_PER_MARKET = 21720
INVALID_CLIENT_ORDER_INDEX = 21727
CLIENT_ORDER_INDEX_EXISTS = 21728
INVALID_TRIGGER_PRICE = 21729
REDUCE_ONLY_INCREASES_POSITION = 21732
FAT_FINGER_PRICE = 21733
PRICE_TOO_FAR_FROM_MARK = 21734
NOT_ENOUGH_ORDER_MARGIN = 21739
TOO_MANY_REQUESTS = 23000
NOT_FOUND = 29404
INTERNAL = 29500
WS_INVALID_JSON = 30000
WS_INVALID_TYPE = 30001
WS_NOT_SUBSCRIBED = 30002
WS_ALREADY_SUBSCRIBED = 30003
WS_INVALID_CHANNEL = 30005
WS_INVALID_DATA = 30007
WS_FAILED_TO_SUBSCRIBE = 30012

MESSAGES: dict[int, str] = {
    ACCOUNT_NOT_FOUND: "account not found",
    INVALID_ACCOUNT_INDEX: "invalid account index",
    INVALID_NONCE: "invalid nonce",
    BATCH_NONCE_NOT_INCREASING: "batch transaction nonce is not increasing",
    API_KEY_NOT_FOUND: "api key not found",
    INVALID_API_KEY_INDEX: "invalid api key index",
    INVALID_SIGNATURE: "invalid signature",
    BATCH_MULTIPLE_OWNER: "all transactions in the batch must have use same account and apikey",
    TX_NOT_FOUND: "transaction not found",
    INVALID_TX_INFO: "invalid tx info",
    UNSUPPORTED_TX_TYPE: "unsupported tx type",
    TOO_MANY_PENDING_TXS: "too many pending txs. Please try again later",
    INVALID_TX_TYPE_FOR_ACCOUNT: "invalid tx type for account",
    TX_INFO_TYPE_LENGTH_MISMATCH: "TxInfos and TxTypes should have the same length",
    MAX_BATCH_TX: "too many transactions in the batch",
    INACTIVE_CANCEL: "given order is not an active limit order",
    ORDER_BOOK_FULL: "order book is full",
    INVALID_MARKET_INDEX: "invalid market index",
    INVALID_ORDER_INDEX: "invalid order index",
    INVALID_BASE_AMOUNT: "invalid base amount",
    INVALID_PRICE: "invalid price",
    INVALID_IS_ASK: "invalid isAsk",
    INVALID_ORDER_TYPE: "invalid OrderType",
    INVALID_TIME_IN_FORCE: "invalid OrderTimeInForce",
    INVALID_ORDER_AMOUNT: "invalid order base or quote amount",
    INVALID_ORDER_OWNER: "account is not owner of the order",
    UNSUPPORTED_ORDER_TYPE: "unsupported order type",
    INVALID_ORDER_EXPIRY: "invalid expiry",
    INVALID_CANCEL_ALL_TIF: "invalid cancel all time in force",
    INVALID_CANCEL_ALL_TIME: "invalid cancel all time",
    INACTIVE_ORDER: "given order is not an active order",
    MAX_ORDERS_PER_MARKET: "maximum active limit order count per market reached",
    MAX_PENDING_ORDERS_PER_MARKET: "maximum pending order count per market reached",
    INVALID_CLIENT_ORDER_INDEX: "invalid client order index",
    CLIENT_ORDER_INDEX_EXISTS: "client order index already exists",
    INVALID_TRIGGER_PRICE: "invalid order trigger price",
    REDUCE_ONLY_INCREASES_POSITION: "reduce only increases position",
    FAT_FINGER_PRICE: "order price flagged as an accidental price",
    PRICE_TOO_FAR_FROM_MARK: "limit order price is too far from the mark price",
    NOT_ENOUGH_ORDER_MARGIN: "not enough margin to create the order",
    TOO_MANY_REQUESTS: "Too Many Requests!",
    NOT_FOUND: "not found",
    INTERNAL: "internal server error",
    WS_INVALID_JSON: "Invalid Json",
    WS_INVALID_TYPE: "Invalid Type",
    WS_NOT_SUBSCRIBED: "Not Subscribed to ",
    WS_ALREADY_SUBSCRIBED: "Already Subscribed to ",
    WS_INVALID_CHANNEL: "Invalid Channel",
    WS_INVALID_DATA: "Invalid Data",
    WS_FAILED_TO_SUBSCRIBE: "Failed to subscribe",
}


# Deliberately NOT an mmfast.core.errors.MmfastError. A VenueError is the simulated venue's answer
# (a code and message that go over the wire as {code, message}), not a failure of mmfast: the bot
# only ever sees it as the LighterApiError (an ExchangeError) it parses from that wire answer.
# Kept outside the tree so the two sides never mix: an `except MmfastError` in bot code that
# drives the engine in-process (tests, tools) cannot swallow a venue rejection as mmfast's own
# error, and `except VenueError` in the simulator catches venue answers, never mmfast errors.
class VenueError(Exception):
    """A rejection with the venue's numeric code (HTTP 400 at the API, or a failed tx)."""

    def __init__(self, code: int, detail: str = "") -> None:
        base = MESSAGES.get(code, "error")
        self.code = code
        self.message = f"{base}: {detail}" if detail else base
        super().__init__(f"{code} {self.message}")

    def to_json(self) -> dict[str, object]:
        """The venue's error body."""
        return {"code": self.code, "message": self.message}


# The simulator's wording for a spent volume quota (the venue's exact text is not published):
# the rate-limit code and message, with a detail that names the quota, so a client can tell it
# from a request-rate 429.
VOLUME_QUOTA_DETAIL = "volume quota exhausted"


class QuotaExceeded(VenueError):
    """A tx refused for a spent volume quota: HTTP 429, code 23000 (not 400)."""

    status = 429

    def __init__(self, remaining: int, free_in_ms: int) -> None:
        super().__init__(
            TOO_MANY_REQUESTS,
            f"{VOLUME_QUOTA_DETAIL} ({remaining} left, next free tx in {free_in_ms} ms)",
        )
        self.remaining = remaining
        self.free_in_ms = free_in_ms

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "volume_quota_remaining": self.remaining,
        }
