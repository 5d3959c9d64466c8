"""Connection options for the plain aiokafka clients (admin, ``produce``, ``generate``,
``tail``), from the same ``MOT_KAFKA_*`` settings as the Faust worker, so every command
reaches a cluster that requires TLS or SASL the way the worker does."""

from __future__ import annotations

import ssl
from typing import Any

from streams.settings import Settings


def ssl_context(s: Settings) -> ssl.SSLContext | None:
    """The TLS context for ``SSL``/``SASL_SSL``; None for the plaintext protocols."""
    if s.kafka_security_protocol.upper() not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=s.kafka_ssl_cafile or None)
    if s.kafka_ssl_certfile:
        context.load_cert_chain(s.kafka_ssl_certfile, s.kafka_ssl_keyfile or None)
    return context


def sasl_mechanism(s: Settings) -> str:
    return (s.kafka_sasl_mechanism or "PLAIN").upper()


def client_options(s: Settings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``/``AIOKafkaAdminClient``."""
    protocol = s.kafka_security_protocol.upper()
    options: dict[str, Any] = {"bootstrap_servers": s.kafka_bootstrap_servers,
                               "security_protocol": protocol}
    context = ssl_context(s)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL"):
        options.update(sasl_mechanism=sasl_mechanism(s),
                       sasl_plain_username=s.kafka_sasl_username,
                       sasl_plain_password=s.kafka_sasl_password)
    return options
