"""A throw-away PostgreSQL for the clinic's tests and benchmark (issue 20): a cluster in a
temporary directory, run as an unprivileged user, on its own Unix socket and a free loopback port,
with Stipple's schema installed as a clinic's database owner would (`stipplectl clinic schema`)."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

from conftest import BUILD

STIPPLECTL = BUILD / "stipplectl"
WORKSTATIONS = {"chair_a": "secret-a", "chair_b": "secret-b", "chair_c": "secret-c"}

def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (make deps installs Debian's postgresql)")
    return os.path.dirname(found[-1])

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

class Postgres:
    """A throw-away PostgreSQL cluster in a temporary directory, run as an unprivileged user
    (`postgres` when the tests run as root: initdb refuses root)."""

    def __init__(self, max_connections=100, durable=False):
        """`durable`: fsync on, as a clinic's server runs (the benchmark); the tests run without."""
        self.bin = pg_bin()
        self.max_connections = max_connections
        self.fsync = "on" if durable else "off"
        self.dir = tempfile.mkdtemp(prefix="stipple-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.run([f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--pwfile", self.pwfile()])
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as hba:
            hba.write("local all postgres trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n")
        self.start()
        self.sql("postgres", "".join(
            f"CREATE ROLE {name} LOGIN PASSWORD '{password}';" for name, password in WORKSTATIONS.items())
            + "CREATE ROLE inspector LOGIN PASSWORD 'secret-i';")
        self.databases = 0

    def pwfile(self):
        path = os.path.join(self.dir, "pw")
        with open(path, "w") as f:
            f.write("owner-secret\n")
        if self.user:
            os.chown(path, pwd.getpwnam(self.user).pw_uid, -1)
        return path

    def run(self, argv, **kw):
        if self.user:
            argv = ["runuser", "-u", self.user, "--"] + argv
        return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=self.dir, **kw)

    def start(self):
        self.run([f"{self.bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "start",
                  "-o", f"-k {self.dir} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync={self.fsync} -c max_connections={self.max_connections}"])

    def stop(self):
        self.run([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, database, sql, user="postgres", password=None, check=True):
        env = dict(os.environ, PGPASSWORD=password or "")
        host = self.dir if user == "postgres" else "127.0.0.1"
        argv = [f"{self.bin}/psql", "-h", host, "-p", str(self.port), "-U", user, "-d", database,
                "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def sql(self, database, sql):
        return self.psql(database, sql).stdout.strip()

    def new_database(self):
        """A fresh database with Stipple's schema, installed as its owner would."""
        self.databases += 1
        name = f"clinic{self.databases}"
        self.sql("postgres", f"CREATE DATABASE {name}")
        schema = subprocess.run([str(STIPPLECTL), "clinic", "schema"], check=True, capture_output=True, text=True).stdout
        result = subprocess.run([f"{self.bin}/psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", name,
                                 "-v", "ON_ERROR_STOP=1", "-q"], input=schema, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        self.sql(name, "".join(f"GRANT stipple_workstation TO {w};" for w in WORKSTATIONS) + "GRANT stipple_reader TO inspector;")
        return name

def connection_file(path, postgres, database, user, password, over_socket=False):
    host = postgres.dir if over_socket else "127.0.0.1"
    with open(path, "w") as f:
        f.write(f"# the clinic's database\nhost={host}\nport={postgres.port}\ndbname={database}\nuser={user}\npassword={password}\n"
                + ("" if over_socket else "sslmode=disable\n"))
    os.chmod(path, 0o600)
    return path

