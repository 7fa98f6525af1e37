"""An independent LevelDB writer and reader (plyvel, on Google's C++ LevelDB)
for netrun's LevelDB tests. Datum records are encoded with Python's protobuf
from caffe_weights.proto (compiled as caffe_interop.py does).

  leveldb_interop.py write DB_DIR N
      Writes N raw Datum records (3x16x16 bytes, byte j of record i is
      ((i * 2654435761 + j * 40503) >> 7) % 256, little compressible; label
      i % 7) under keys "%08d" % i, in a shuffled order, Snappy-compressed;
      holds N // 10 of them back, compacts the rest into tables (several, of
      LevelDB's 2 MiB at most), then writes the held-back ones, which stay in
      level-0 tables and the log.
  leveldb_interop.py read DB_DIR OUT.json
      Reads every record in key order and writes [key, channels, height,
      width, label, encoded, data as a list of ints] per record.
"""
import json
import random
import sys
import tempfile


def datum_pb():
    from caffe_interop import compile_proto

    return compile_proto(tempfile.mkdtemp())


def record(pb, i):
    d = pb.Datum(channels=3, height=16, width=16, label=i % 7)
    d.data = bytes(((i * 2654435761 + j * 40503) >> 7) % 256 for j in range(768))
    return b"%08d" % i, d.SerializeToString()


def write(db_dir, n):
    import plyvel

    pb = datum_pb()
    order = list(range(n))
    random.Random(5).shuffle(order)
    late = set(order[-(n // 10):]) if n >= 10 else set()
    db = plyvel.DB(db_dir, create_if_missing=True, error_if_exists=True,
                   write_buffer_size=256 * 1024, compression="snappy")
    for i in order:
        if i not in late:
            db.put(*record(pb, i))
    db.compact_range()
    for i in sorted(late):
        db.put(*record(pb, i))
    db.close()


def read(db_dir, out):
    import plyvel

    pb = datum_pb()
    db = plyvel.DB(db_dir, create_if_missing=False)
    rows = []
    for key, value in db:
        d = pb.Datum()
        d.ParseFromString(value)
        rows.append([key.decode(), d.channels, d.height, d.width, d.label, d.encoded,
                     list(d.data)])
    db.close()
    with open(out, "w") as f:
        json.dump(rows, f)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "write":
        write(sys.argv[2], int(sys.argv[3]))
    elif cmd == "read":
        read(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown command {cmd}")
