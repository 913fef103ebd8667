"""Transport security: Kafka SSL/SASL and Temporal (m)TLS client options from Settings.

Every hotline process builds its clients through these functions, so one set of
``HOTLINE_*`` variables secures them all:

- :func:`kafka_security_config` gives the kafka-python keyword arguments
  (``security_protocol``, ``ssl_*``, ``sasl_*``) that ``workers.runtime.kafka_io``'s factories, the
  worker's ``KafkaPublisher`` and the stack's admin client add to their own options;
- :func:`temporal_tls` gives the ``tls`` argument of ``temporalio.client.Client.connect``
  (``False``, ``True`` for system roots, or a ``TLSConfig`` with a private CA and a client
  certificate for mutual TLS); :func:`temporal_connect_options` wraps it as keyword
  arguments;
- PostgreSQL needs nothing here: libpq reads ``sslmode``, ``sslrootcert``, ``sslcert`` and
  ``sslkey`` from ``HOTLINE_DATABASE_URL`` itself. :func:`postgres_sslmode` reports the
  mode in force, for the start-up log.

A setting that cannot work (a certificate without its key, SASL without a mechanism, a
file that does not exist) raises :class:`TransportSecurityError` naming the variable, so a
process stops at start-up instead of failing on its first connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.service import TLSConfig

from workers.runtime.settings import Settings

__all__ = [
    "TransportSecurityError",
    "describe_transport",
    "kafka_security_config",
    "postgres_sslmode",
    "temporal_connect_options",
    "temporal_tls",
]

_SSL_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
_SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


class TransportSecurityError(ValueError):
    """The transport security settings are incomplete or inconsistent."""


def _readable(path: Path | None, variable: str) -> Path | None:
    if path is None:
        return None
    if not path.is_file():
        raise TransportSecurityError(f"{variable}: no such file {path}")
    return path


def kafka_security_config(settings: Settings) -> dict[str, Any]:
    """kafka-python options for the configured Kafka security protocol.

    The same keys work for ``KafkaProducer``, ``KafkaConsumer`` and ``KafkaAdminClient``.
    With ``PLAINTEXT`` (the local default) the result is ``{"security_protocol":
    "PLAINTEXT"}``, i.e. kafka-python's own default.

    Args:
        settings: Process settings (``kafka_security_protocol``, ``kafka_ssl_*``,
            ``kafka_sasl_*``).

    Returns:
        Keyword arguments to merge into a kafka-python client's configuration.

    Raises:
        TransportSecurityError: A certificate without its key (or the reverse), a file
            that does not exist, SSL files with a non-SSL protocol, or SASL without a
            mechanism, user name or password.
    """
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security_protocol": protocol}
    cafile = _readable(settings.kafka_ssl_cafile, "HOTLINE_KAFKA_SSL_CAFILE")
    certfile = _readable(settings.kafka_ssl_certfile, "HOTLINE_KAFKA_SSL_CERTFILE")
    keyfile = _readable(settings.kafka_ssl_keyfile, "HOTLINE_KAFKA_SSL_KEYFILE")
    if protocol in _SSL_PROTOCOLS:
        if (certfile is None) != (keyfile is None):
            raise TransportSecurityError(
                "HOTLINE_KAFKA_SSL_CERTFILE and HOTLINE_KAFKA_SSL_KEYFILE go together "
                "(a client certificate needs its private key)"
            )
        if cafile is not None:
            config["ssl_cafile"] = str(cafile)
        if certfile is not None and keyfile is not None:
            config["ssl_certfile"] = str(certfile)
            config["ssl_keyfile"] = str(keyfile)
        if settings.kafka_ssl_key_password is not None:
            config["ssl_password"] = settings.kafka_ssl_key_password.get_secret_value()
        config["ssl_check_hostname"] = settings.kafka_ssl_check_hostname
    elif cafile or certfile or keyfile:
        raise TransportSecurityError(
            f"HOTLINE_KAFKA_SSL_* files are set but HOTLINE_KAFKA_SECURITY_PROTOCOL is "
            f"{protocol}; use SSL or SASL_SSL"
        )
    if protocol in _SASL_PROTOCOLS:
        if settings.kafka_sasl_mechanism is None:
            raise TransportSecurityError(
                f"HOTLINE_KAFKA_SASL_MECHANISM is required with {protocol} "
                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise TransportSecurityError(
                "HOTLINE_KAFKA_SASL_USERNAME and HOTLINE_KAFKA_SASL_PASSWORD are required "
                f"with SASL mechanism {settings.kafka_sasl_mechanism}"
            )
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    elif settings.kafka_sasl_mechanism is not None:
        raise TransportSecurityError(
            f"HOTLINE_KAFKA_SASL_MECHANISM is set but HOTLINE_KAFKA_SECURITY_PROTOCOL is "
            f"{protocol}; use SASL_PLAINTEXT or SASL_SSL"
        )
    return config


def temporal_tls(settings: Settings) -> bool | TLSConfig:
    """The ``tls`` argument of ``Client.connect`` for the configured Temporal frontend.

    Args:
        settings: Process settings (``temporal_tls``, ``temporal_tls_*``).

    Returns:
        ``False`` for plaintext (local dev server); ``True`` for TLS against the system
        trust store; a ``TLSConfig`` when a CA, a client certificate (mutual TLS) or a
        server name is configured.

    Raises:
        TransportSecurityError: A certificate without its key (or the reverse), or a file
            that does not exist.
    """
    ca = _readable(settings.temporal_tls_ca_file, "HOTLINE_TEMPORAL_TLS_CA_FILE")
    cert = _readable(settings.temporal_tls_cert_file, "HOTLINE_TEMPORAL_TLS_CERT_FILE")
    key = _readable(settings.temporal_tls_key_file, "HOTLINE_TEMPORAL_TLS_KEY_FILE")
    if (cert is None) != (key is None):
        raise TransportSecurityError(
            "HOTLINE_TEMPORAL_TLS_CERT_FILE and HOTLINE_TEMPORAL_TLS_KEY_FILE go together "
            "(mutual TLS needs the client certificate and its private key)"
        )
    name = settings.temporal_tls_server_name
    if ca is None and cert is None and not name:
        return bool(settings.temporal_tls)
    return TLSConfig(
        server_root_ca_cert=ca.read_bytes() if ca else None,
        domain=name or None,
        client_cert=cert.read_bytes() if cert else None,
        client_private_key=key.read_bytes() if key else None,
    )


def temporal_connect_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect`` that carry the transport security.

    Use as ``Client.connect(address, namespace=..., **temporal_connect_options(s))``.
    """
    return {"tls": temporal_tls(settings)}


def postgres_sslmode(dsn: str) -> str:
    """The libpq ``sslmode`` a DSN asks for (``prefer`` when it names none).

    ``verify-full`` (with ``sslrootcert``) is what production should use: it checks the
    server's certificate and host name. ``prefer``, libpq's default, encrypts when the
    server offers TLS but accepts plaintext and any certificate.
    """
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn).get("sslmode") or "prefer")


def describe_transport(settings: Settings) -> dict[str, str]:
    """One line per connection for the start-up log: protocols, never secrets."""
    tls = temporal_tls(settings)
    if isinstance(tls, TLSConfig):
        temporal = "mTLS" if tls.client_cert else "TLS (private CA)"
    else:
        temporal = "TLS (system roots)" if tls else "plaintext"
    kafka: str = settings.kafka_security_protocol
    if settings.kafka_sasl_mechanism and kafka in _SASL_PROTOCOLS:
        kafka += f" ({settings.kafka_sasl_mechanism})"
    elif kafka in _SSL_PROTOCOLS and settings.kafka_ssl_certfile:
        kafka += " (client certificate)"
    return {
        "kafka": kafka,
        "temporal": temporal,
        "postgres": f"sslmode={postgres_sslmode(settings.dsn)}",
    }
