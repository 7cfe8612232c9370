-- Where the running writer's Unix-domain socket is, beside compute_host/compute_port:
-- a gateway on the same machine connects there instead of over TCP loopback.
ALTER TABLE dbs ADD COLUMN compute_socket_path text;
