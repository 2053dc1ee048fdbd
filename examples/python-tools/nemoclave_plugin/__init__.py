"""Serve a nemoclave plugin from Python.

This package implements the host/plugin wire protocol described in
docs/plugin-protocol.md with grpcio and protobuf only (Debian:
python3-grpcio, python3-protobuf, python3-cryptography). It is a
transcription of that document, not of the Go SDK: the go-plugin
handshake on stdout, AutoMTLS, the nemoclave.plugin.v1.Plugin service,
one service per declared kind, and go-plugin's health, controller and
broker services.

A plugin subclasses Plugin and implements the RPCs of its kinds as
methods named like the RPCs (ListTools, CallTool, ...), taking the
request message and the grpc context and returning the response message
(or yielding messages, for server-streaming RPCs). RPCs it does not
implement answer UNIMPLEMENTED, which the host reads as NotSupported.
Raise PluginError(code, message) for an error the host acts on.
"""

import base64
import datetime
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent import futures

# The generated messages import each other by proto path (nemoclave.x.v1),
# so their root goes on sys.path; it holds no top-level name that shadows
# grpc or google.
_PB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pb")
if _PB not in sys.path:
    sys.path.insert(0, _PB)

import grpc  # noqa: E402
from google.protobuf import symbol_database  # noqa: E402

from gohealth import health_pb2  # noqa: E402
from goplugin import grpc_broker_pb2, grpc_controller_pb2  # noqa: E402,F401
from nemoclave.dataproc.v1 import dataproc_pb2  # noqa: E402
from nemoclave.embeddings.v1 import embeddings_pb2  # noqa: E402
from nemoclave.llm.v1 import llm_pb2  # noqa: E402
from nemoclave.memory.v1 import memory_pb2  # noqa: E402
from nemoclave.plugin.v1 import plugin_pb2  # noqa: E402
from nemoclave.retrieval.v1 import retrieval_pb2  # noqa: E402
from nemoclave.tools.v1 import tools_pb2  # noqa: E402

# The handshake constants (docs/plugin-protocol.md, "The handshake").
CORE_PROTOCOL_VERSION = 1
PROTOCOL_VERSIONS = (1,)
MAGIC_COOKIE_KEY = "NEMOCLAVE_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "6b1f6e0c2d8a4e3f9b7c5a1d0e2f4a6c"

# The gRPC service each kind serves.
KIND_SERVICES = {
    "llm": llm_pb2.DESCRIPTOR.services_by_name["LLM"],
    "embeddings": embeddings_pb2.DESCRIPTOR.services_by_name["Embeddings"],
    "retrieval": retrieval_pb2.DESCRIPTOR.services_by_name["Retrieval"],
    "memory": memory_pb2.DESCRIPTOR.services_by_name["Memory"],
    "tools": tools_pb2.DESCRIPTOR.services_by_name["Tools"],
    "dataproc": dataproc_pb2.DESCRIPTOR.services_by_name["DataProc"],
}

# The largest gRPC message either side sends (the Go SDK's MaxMessageBytes).
MAX_MESSAGE_BYTES = 48 << 20

# The SDK's status codes on the wire (docs/plugin-protocol.md, "Errors").
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
NOT_SUPPORTED = grpc.StatusCode.UNIMPLEMENTED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
RATE_LIMITED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED
INTERNAL = grpc.StatusCode.INTERNAL


class PluginError(Exception):
    """An error with a status code the host acts on."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def log(level, message, **fields):
    """Writes one hclog JSON line to stderr; the host shows it in
    `nemoclave logs --source plugin` at its own level, fields included."""
    entry = {"@level": level, "@message": message,
             "@timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    entry.update({k: str(v) for k, v in fields.items()})
    sys.stderr.write(json.dumps(entry) + "\n")
    sys.stderr.flush()


def error(path, summary, detail=""):
    """An error diagnostic about the config attribute at path (a list)."""
    return plugin_pb2.Diagnostic(severity=plugin_pb2.Diagnostic.SEVERITY_ERROR,
                                 summary=summary, detail=detail, attribute_path=path or [])


class Plugin:
    """Base class: set the class attributes, override what you need."""

    name = ""
    version = ""
    description = ""
    kinds = ()
    capabilities = ()

    def schema(self):
        """The config block's schema: a plugin_pb2.Block."""
        return plugin_pb2.Block()

    def validate_config(self, config):
        """Semantic checks of the decoded config (a dict); returns a list
        of diagnostics (see error). Must not touch the network."""
        return []

    def configure(self, config, state_dir):
        """Applies a valid config; called before any kind RPC and again
        on every blueprint change. Raise to refuse it."""


def _message_class(descriptor):
    return symbol_database.Default().GetSymbol(descriptor.full_name)


def _call(impl_method, name):
    """Wraps one RPC implementation: PluginError becomes its status code,
    anything else INTERNAL with the traceback on stderr (the host logs it)."""

    def unary(request, context):
        try:
            return impl_method(request, context)
        except PluginError as e:
            context.abort(e.code, e.message)
        except Exception as e:  # a bug in the plugin: report, do not die
            log("error", "rpc failed", rpc=name, error=repr(e), stack=traceback.format_exc())
            context.abort(INTERNAL, "%s: %s" % (name, e))

    def stream(request, context):
        try:
            yield from impl_method(request, context)
        except PluginError as e:
            context.abort(e.code, e.message)
        except Exception as e:
            log("error", "rpc failed", rpc=name, error=repr(e), stack=traceback.format_exc())
            context.abort(INTERNAL, "%s: %s" % (name, e))

    return unary, stream


def service_handler(service, impl):
    """A grpc handler serving every method of service (a protobuf
    ServiceDescriptor) from impl's method of the same name; missing ones
    answer UNIMPLEMENTED (NotSupported)."""
    handlers = {}
    for m in service.methods:
        req, resp = _message_class(m.input_type), _message_class(m.output_type)
        fn = getattr(impl, m.name, None)
        if fn is None:
            fn = _unimplemented(m.full_name, m.server_streaming)
        unary, stream = _call(fn, m.name)
        if m.client_streaming:
            raise ValueError("client-streaming RPC %s is not used by nemoclave" % m.full_name)
        make = grpc.unary_stream_rpc_method_handler if m.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[m.name] = make(stream if m.server_streaming else unary,
                                request_deserializer=req.FromString,
                                response_serializer=resp.SerializeToString)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _unimplemented(full_name, streaming):
    def fn(request, context):
        raise PluginError(NOT_SUPPORTED, "%s is not implemented by this plugin" % full_name)
    if not streaming:
        return fn

    def gen(request, context):
        fn(request, context)
        yield  # unreachable: makes this a generator

    return gen


class _PluginService:
    """nemoclave.plugin.v1.Plugin over a Plugin instance."""

    def __init__(self, plugin):
        self.p = plugin

    def GetInfo(self, request, context):
        p = self.p
        return plugin_pb2.Info(name=p.name, version=p.version, description=p.description,
                               kinds=list(p.kinds), capabilities=list(p.capabilities),
                               protocol_versions=list(PROTOCOL_VERSIONS))

    def GetSchema(self, request, context):
        return plugin_pb2.GetSchemaResponse(block=self.p.schema())

    def _decode(self, raw):
        if not raw:
            return {}, []
        try:
            cfg = json.loads(raw)
        except ValueError as e:
            return None, [error([], "config is not JSON", str(e))]
        if not isinstance(cfg, dict):
            return None, [error([], "config is not a JSON object")]
        return cfg, []

    def ValidateConfig(self, request, context):
        cfg, diags = self._decode(request.config_json)
        if cfg is not None:
            diags = self.p.validate_config(cfg)
        return plugin_pb2.ValidateConfigResponse(diagnostics=diags)

    def Configure(self, request, context):
        # As the Go SDK does: validate first, refuse with diagnostics.
        cfg, diags = self._decode(request.config_json)
        if cfg is not None:
            diags = self.p.validate_config(cfg)
        if any(d.severity != plugin_pb2.Diagnostic.SEVERITY_WARNING for d in diags):
            return plugin_pb2.ConfigureResponse(diagnostics=diags)
        try:
            self.p.configure(cfg, request.state_dir)
        except Exception as e:
            return plugin_pb2.ConfigureResponse(diagnostics=[error([], "configure failed", str(e))])
        return plugin_pb2.ConfigureResponse()


class _Health:
    def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class _Controller:
    def __init__(self, stop):
        self.stop = stop

    def Shutdown(self, request, context):
        # Answer first, then stop: the host waits for this reply and
        # then for the process to exit (2 s before it kills it).
        threading.Thread(target=self.stop, daemon=True).start()
        return grpc_controller_pb2.Empty()


def _broker_start_stream(request_iterator, context):
    # The host announces the services it offers on the broker (ConnInfo
    # with a service_id) here; a plugin that does not call its host
    # services reads and ignores them, keeping the stream open for the
    # connection's life.
    for _ in request_iterator:
        pass
    return iter(())


def _server_credentials(client_pem):
    """AutoMTLS: a fresh self-signed certificate for "localhost" that
    trusts exactly the host's certificate (PLUGIN_CLIENT_CERT), and the
    certificate's DER in unpadded base64 for the handshake line."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nemoclave plugin")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=True, data_encipherment=False,
                                         key_agreement=True, key_cert_sign=True, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_pem.encode(),
                                        require_client_auth=True)
    der = cert.public_bytes(serialization.Encoding.DER)
    return creds, base64.b64encode(der).decode().rstrip("=")


def _negotiate():
    offered = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "")
    if not offered:
        return max(PROTOCOL_VERSIONS)
    common = set()
    for v in offered.split(","):
        if v.strip().isdigit() and int(v) in PROTOCOL_VERSIONS:
            common.add(int(v))
    if not common:
        sys.stderr.write("nemoclave plugin: the host speaks protocol versions %s, this plugin %s; "
                         "update one of them\n" % (offered, ",".join(map(str, PROTOCOL_VERSIONS))))
        sys.exit(1)
    return max(common)


def serve(plugin):
    """Serves plugin until the host shuts it down. Never returns."""
    for k in plugin.kinds:
        if k not in KIND_SERVICES:
            sys.stderr.write("nemoclave plugin: unknown kind %r (known: %s)\n" % (k, ", ".join(KIND_SERVICES)))
            sys.exit(1)
    if not plugin.kinds:
        sys.stderr.write("nemoclave plugin: %s declares no kinds\n" % plugin.name)
        sys.exit(1)
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write("This is a nemoclave plugin. It is started by nemoclave, not by hand.\n")
        sys.exit(1)
    # Stdout carries the handshake line and nothing else: a stray print
    # goes to stderr instead, where the host logs it.
    handshake_out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    # Ctrl-C in the host's terminal reaches the plugin too; the host
    # decides when the plugin stops (Shutdown), as go-plugin's plugins do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    version = _negotiate()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
    done = threading.Event()

    def stop():
        server.stop(grace=1).wait()
        done.set()

    server.add_generic_rpc_handlers([
        service_handler(plugin_pb2.DESCRIPTOR.services_by_name["Plugin"], _PluginService(plugin)),
        service_handler(health_pb2.DESCRIPTOR.services_by_name["Health"], _Health()),
        service_handler(grpc_controller_pb2.DESCRIPTOR.services_by_name["GRPCController"], _Controller(stop)),
        grpc.method_handlers_generic_handler("plugin.GRPCBroker", {
            "StartStream": grpc.stream_stream_rpc_method_handler(
                _broker_start_stream,
                request_deserializer=grpc_broker_pb2.ConnInfo.FromString,
                response_serializer=grpc_broker_pb2.ConnInfo.SerializeToString)}),
    ] + [service_handler(KIND_SERVICES[k], plugin) for k in plugin.kinds])

    sock_dir = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="plugin", dir=sock_dir)
    os.close(fd)
    os.remove(path)  # the socket must not exist yet
    client_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
    cert = ""
    if client_pem:
        creds, cert = _server_credentials(client_pem)
        server.add_secure_port("unix:" + path, creds)
    else:
        server.add_insecure_port("unix:" + path)
    server.start()

    handshake_out.write("%d|%d|unix|%s|grpc|%s\n" % (CORE_PROTOCOL_VERSION, version, path, cert))
    handshake_out.flush()

    # Exit with the host: a plugin outside a box is the host's child; in
    # a box it is PID 1 and the box dies with the host.
    ppid = os.getppid()
    while not done.wait(0.2):
        if os.getppid() != ppid:
            os._exit(2)
    try:
        os.remove(path)
    except OSError:
        pass
    sys.exit(0)
