/* The optional native fast path of ledger/codec.py's `decode`: parse canonical msgpack and check it against a wire
 * type in one pass, building the same value the Python decoder builds. It never decides an error: anything it does
 * not accept (a malformed or non-canonical byte, a value outside the schema, an exception raised by a record's
 * constructor or a pattern check, a memory error) makes it answer MISS, and `decode` then runs the Python decoder,
 * which produces the value or the precise DecodeError. So it must only ever accept bytes the Python decoder accepts
 * and give an equal value for them: tests/ledger/test_codec_native.py compares both on valid, mutated and random
 * inputs.
 *
 *     compile(spec) -> schema         (spec: nested tuples built by ledger.codec from a WireType, see _native_spec)
 *     decode(schema, data, max_bytes) -> value or MISS
 *
 * The same module also gives codec.constructor its record makers and encode_trusted its one-pass encoder (the
 * sections "record makers" and "trusted encoding" below).
 *
 * Canonical means what msgpack-python's Packer(use_bin_type=True) writes for the value: the smallest int, str,
 * bin, array and map header for it (positive ints never in a signed form), nil/true/false, no float or ext; a
 * top-level value followed by anything is refused. Every read is bounds-checked against the input's end; the
 * nesting depth is bounded by the schema (a tree: no record contains itself) and by MAX_DEPTH.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <structmember.h>

#define MAX_DEPTH 64

enum {
    N_UINT = 0,
    N_VERSION = 1,
    N_BOOL = 2,
    N_BIN = 3,
    N_STR = 4,
    N_CHOICE = 5,
    N_OPTIONAL = 6,
    N_SEQ = 7,
    N_RECORD = 8,
    N_VARIANT = 9,
    N_MAP = 10,
    N_SCALAR = 11,
};

typedef struct Node {
    int code;
    unsigned long long lo, hi; /* UINT range; VERSION number in lo */
    Py_ssize_t min, max;       /* BIN, STR, SEQ length bounds; MAP and SCALAR use max */
    int sorted_unique;         /* SEQ */
    PyObject *obj;             /* STR matcher (or NULL), CHOICE set, SEQ sort key (or NULL), RECORD maker */
    struct Node *a, *b;        /* OPTIONAL inner; SEQ item; MAP key, value */
    struct Node **fields;      /* RECORD fields */
    Py_ssize_t nfields;
    struct Node **kinds;       /* VARIANT: 256 entries, NULL where no kind */
} Node;

static PyObject *MISS = NULL;

static void node_free(Node *n) {
    if (n == NULL) return;
    Py_XDECREF(n->obj);
    node_free(n->a);
    node_free(n->b);
    if (n->fields != NULL) {
        for (Py_ssize_t i = 0; i < n->nfields; i++) node_free(n->fields[i]);
        PyMem_Free(n->fields);
    }
    if (n->kinds != NULL) {
        for (int i = 0; i < 256; i++) node_free(n->kinds[i]);
        PyMem_Free(n->kinds);
    }
    PyMem_Free(n);
}

/* ---- compiling a spec ------------------------------------------------------------------------------------------ */

static int spec_ssize(PyObject *spec, Py_ssize_t i, Py_ssize_t *out) {
    PyObject *v = PyTuple_GET_ITEM(spec, i);
    Py_ssize_t x = PyLong_AsSsize_t(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < 0) {
        PyErr_SetString(PyExc_ValueError, "negative bound in spec");
        return -1;
    }
    *out = x;
    return 0;
}

static int spec_ull(PyObject *spec, Py_ssize_t i, unsigned long long *out) {
    unsigned long long x = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(spec, i));
    if (x == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static Node *compile_node(PyObject *spec, int depth);

static int need(PyObject *spec, Py_ssize_t n) {
    if (PyTuple_GET_SIZE(spec) != n) {
        PyErr_Format(PyExc_ValueError, "spec of code %R needs %zd items", PyTuple_GET_ITEM(spec, 0), n);
        return -1;
    }
    return 0;
}

static Node *compile_node(PyObject *spec, int depth) {
    if (depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "spec nested too deeply");
        return NULL;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_SetString(PyExc_TypeError, "a spec is a non-empty tuple");
        return NULL;
    }
    long code = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    if (code == -1 && PyErr_Occurred()) return NULL;
    Node *n = PyMem_Calloc(1, sizeof(Node));
    if (n == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    n->code = (int)code;
    switch (code) {
    case N_UINT:
        if (need(spec, 3) || spec_ull(spec, 1, &n->lo) || spec_ull(spec, 2, &n->hi)) goto fail;
        break;
    case N_VERSION:
        if (need(spec, 2) || spec_ull(spec, 1, &n->lo)) goto fail;
        break;
    case N_BOOL:
        if (need(spec, 1)) goto fail;
        break;
    case N_BIN:
        if (need(spec, 3) || spec_ssize(spec, 1, &n->min) || spec_ssize(spec, 2, &n->max)) goto fail;
        break;
    case N_STR: {
        if (need(spec, 4) || spec_ssize(spec, 1, &n->min) || spec_ssize(spec, 2, &n->max)) goto fail;
        PyObject *m = PyTuple_GET_ITEM(spec, 3);
        if (m != Py_None) {
            Py_INCREF(m);
            n->obj = m;
        }
        break;
    }
    case N_CHOICE: {
        if (need(spec, 2)) goto fail;
        PyObject *s = PyTuple_GET_ITEM(spec, 1);
        if (!PyFrozenSet_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "choice names must be a frozenset");
            goto fail;
        }
        Py_INCREF(s);
        n->obj = s;
        break;
    }
    case N_OPTIONAL:
        if (need(spec, 2)) goto fail;
        if ((n->a = compile_node(PyTuple_GET_ITEM(spec, 1), depth + 1)) == NULL) goto fail;
        break;
    case N_SEQ: {
        if (need(spec, 6) || spec_ssize(spec, 2, &n->min) || spec_ssize(spec, 3, &n->max)) goto fail;
        if ((n->a = compile_node(PyTuple_GET_ITEM(spec, 1), depth + 1)) == NULL) goto fail;
        int su = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 4));
        if (su < 0) goto fail;
        n->sorted_unique = su;
        PyObject *key = PyTuple_GET_ITEM(spec, 5);
        if (key != Py_None) {
            Py_INCREF(key);
            n->obj = key;
        }
        break;
    }
    case N_RECORD: {
        if (need(spec, 3)) goto fail;
        PyObject *maker = PyTuple_GET_ITEM(spec, 1), *fields = PyTuple_GET_ITEM(spec, 2);
        if (!PyCallable_Check(maker) || !PyTuple_Check(fields)) {
            PyErr_SetString(PyExc_TypeError, "a record spec is (8, maker, (fields...))");
            goto fail;
        }
        Py_INCREF(maker);
        n->obj = maker;
        n->nfields = PyTuple_GET_SIZE(fields);
        n->fields = PyMem_Calloc(n->nfields ? n->nfields : 1, sizeof(Node *));
        if (n->fields == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t i = 0; i < n->nfields; i++)
            if ((n->fields[i] = compile_node(PyTuple_GET_ITEM(fields, i), depth + 1)) == NULL) goto fail;
        break;
    }
    case N_VARIANT: {
        if (need(spec, 2)) goto fail;
        PyObject *kinds = PyTuple_GET_ITEM(spec, 1);
        if (!PyTuple_Check(kinds)) {
            PyErr_SetString(PyExc_TypeError, "variant kinds must be a tuple of (kind, record spec)");
            goto fail;
        }
        n->kinds = PyMem_Calloc(256, sizeof(Node *));
        if (n->kinds == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kinds); i++) {
            PyObject *pair = PyTuple_GET_ITEM(kinds, i);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "variant kinds must be a tuple of (kind, record spec)");
                goto fail;
            }
            long kind = PyLong_AsLong(PyTuple_GET_ITEM(pair, 0));
            if (kind == -1 && PyErr_Occurred()) goto fail;
            if (kind < 0 || kind > 255 || n->kinds[kind] != NULL) {
                PyErr_SetString(PyExc_ValueError, "variant kinds must be distinct uint8");
                goto fail;
            }
            Node *rec = compile_node(PyTuple_GET_ITEM(pair, 1), depth + 1);
            if (rec == NULL) goto fail;
            n->kinds[kind] = rec;
            if (rec->code != N_RECORD) {
                PyErr_SetString(PyExc_ValueError, "a variant kind must be a record");
                goto fail;
            }
        }
        break;
    }
    case N_MAP:
        if (need(spec, 4) || spec_ssize(spec, 3, &n->max)) goto fail;
        if ((n->a = compile_node(PyTuple_GET_ITEM(spec, 1), depth + 1)) == NULL) goto fail;
        if (n->a->code != N_STR) {
            PyErr_SetString(PyExc_ValueError, "map keys must be str");
            goto fail;
        }
        if ((n->b = compile_node(PyTuple_GET_ITEM(spec, 2), depth + 1)) == NULL) goto fail;
        break;
    case N_SCALAR:
        if (need(spec, 2) || spec_ssize(spec, 1, &n->max)) goto fail;
        break;
    default:
        PyErr_Format(PyExc_ValueError, "unknown spec code %ld", code);
        goto fail;
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

static void schema_destroy(PyObject *capsule) {
    node_free((Node *)PyCapsule_GetPointer(capsule, "ledger._codec_native.schema"));
}

static PyObject *py_compile(PyObject *self, PyObject *spec) {
    Node *n = compile_node(spec, 0);
    if (n == NULL) return NULL;
    PyObject *cap = PyCapsule_New(n, "ledger._codec_native.schema", schema_destroy);
    if (cap == NULL) node_free(n);
    return cap;
}

/* ---- reading canonical msgpack --------------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
    int depth;
} Rd;

static inline int take(Rd *r, Py_ssize_t n, const unsigned char **out) {
    if (r->end - r->p < n) return -1;
    *out = r->p;
    r->p += n;
    return 0;
}

static inline unsigned long long be(const unsigned char *s, int n) {
    unsigned long long v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | s[i];
    return v;
}

/* A non-negative integer in its smallest form. */
static int rd_uint(Rd *r, unsigned long long *out) {
    if (r->p >= r->end) return -1;
    unsigned char h = *r->p++;
    const unsigned char *s;
    unsigned long long v;
    if (h <= 0x7f) {
        *out = h;
        return 0;
    }
    switch (h) {
    case 0xcc:
        if (take(r, 1, &s)) return -1;
        v = s[0];
        if (v < 0x80) return -1;
        break;
    case 0xcd:
        if (take(r, 2, &s)) return -1;
        v = be(s, 2);
        if (v <= 0xff) return -1;
        break;
    case 0xce:
        if (take(r, 4, &s)) return -1;
        v = be(s, 4);
        if (v <= 0xffff) return -1;
        break;
    case 0xcf:
        if (take(r, 8, &s)) return -1;
        v = be(s, 8);
        if (v <= 0xffffffffULL) return -1;
        break;
    default:
        return -1;
    }
    *out = v;
    return 0;
}

/* A negative integer in its smallest form (the byte at r->p is a negative fixint or an int8..int64 header). */
static int rd_negative(Rd *r, long long *out) {
    if (r->p >= r->end) return -1;
    unsigned char h = *r->p++;
    const unsigned char *s;
    long long v;
    if (h >= 0xe0) {
        *out = (long long)(signed char)h;
        return 0;
    }
    switch (h) {
    case 0xd0:
        if (take(r, 1, &s)) return -1;
        v = (signed char)s[0];
        if (v >= -32) return -1;
        break;
    case 0xd1:
        if (take(r, 2, &s)) return -1;
        v = (short)(unsigned short)be(s, 2);
        if (v >= -128) return -1;
        break;
    case 0xd2:
        if (take(r, 4, &s)) return -1;
        v = (int)(unsigned int)be(s, 4);
        if (v >= -32768) return -1;
        break;
    case 0xd3:
        if (take(r, 8, &s)) return -1;
        v = (long long)be(s, 8);
        if (v >= -2147483648LL) return -1;
        break;
    default:
        return -1;
    }
    *out = v;
    return 0;
}

/* A header of one of the sized kinds, in its smallest form: the length and the position of the payload. */
static int rd_len(Rd *r, unsigned char fix_base, unsigned char fix_mask, unsigned char h8, unsigned char h16,
                  unsigned char h32, Py_ssize_t *n) {
    if (r->p >= r->end) return -1;
    unsigned char h = *r->p;
    const unsigned char *s;
    unsigned long long v;
    if (fix_mask && (h & (unsigned char)~fix_mask) == fix_base) {
        r->p++;
        *n = h & fix_mask;
        return 0;
    }
    if (h8 && h == h8) {
        r->p++;
        if (take(r, 1, &s)) return -1;
        v = s[0];
        if (fix_mask && v <= fix_mask) return -1;
    } else if (h == h16) {
        r->p++;
        if (take(r, 2, &s)) return -1;
        v = be(s, 2);
        if (v <= (h8 ? 0xffULL : (unsigned long long)fix_mask)) return -1;
    } else if (h == h32) {
        r->p++;
        if (take(r, 4, &s)) return -1;
        v = be(s, 4);
        if (v <= 0xffffULL) return -1;
    } else {
        return -1;
    }
    *n = (Py_ssize_t)v;
    return 0;
}

static inline int rd_str(Rd *r, const unsigned char **s, Py_ssize_t *n) {
    if (rd_len(r, 0xa0, 0x1f, 0xd9, 0xda, 0xdb, n)) return -1;
    return take(r, *n, s);
}

static inline int rd_bin(Rd *r, const unsigned char **s, Py_ssize_t *n) {
    if (rd_len(r, 0, 0, 0xc4, 0xc5, 0xc6, n)) return -1; /* no fix form: bin8 holds any length up to 255 */
    return take(r, *n, s);
}

static inline int rd_array(Rd *r, Py_ssize_t *n) {
    if (rd_len(r, 0x90, 0x0f, 0, 0xdc, 0xdd, n)) return -1;
    return *n > r->end - r->p ? -1 : 0; /* every item takes at least one byte */
}

static inline int rd_map(Rd *r, Py_ssize_t *n) {
    if (rd_len(r, 0x80, 0x0f, 0, 0xde, 0xdf, n)) return -1;
    return *n > (r->end - r->p) / 2 ? -1 : 0;
}

/* ---- decoding against the schema ------------------------------------------------------------------------------- */

static PyObject *dec(Node *n, Rd *r);

static PyObject *dec_fields(Node *rec, Rd *r) {
    PyObject *stack[16];
    PyObject **args = stack;
    Py_ssize_t nf = rec->nfields, i;
    PyObject *out = NULL;
    if (nf > 16) {
        args = PyMem_Malloc(nf * sizeof(PyObject *));
        if (args == NULL) return NULL;
    }
    for (i = 0; i < nf; i++) {
        args[i] = dec(rec->fields[i], r);
        if (args[i] == NULL) goto done;
    }
    out = PyObject_Vectorcall(rec->obj, args, nf, NULL);
done:
    for (Py_ssize_t j = 0; j < i; j++) Py_DECREF(args[j]);
    if (args != stack) PyMem_Free(args);
    return out;
}

static PyObject *dec_str(Rd *r, Node *n) {
    const unsigned char *s;
    Py_ssize_t len;
    if (rd_str(r, &s, &len)) return NULL;
    if (n->obj == NULL && (len < n->min || len > n->max)) return NULL; /* free text: bounds on its UTF-8 bytes */
    PyObject *u = PyUnicode_DecodeUTF8((const char *)s, len, "strict");
    if (u == NULL || n->obj == NULL) return u;
    Py_ssize_t chars = PyUnicode_GET_LENGTH(u); /* a pattern's bounds apply to len(str), as in Str._check */
    if (chars < n->min || chars > n->max) goto miss;
    PyObject *m = PyObject_CallOneArg(n->obj, u);
    if (m == NULL) goto miss;
    int matched = m != Py_None;
    Py_DECREF(m);
    if (matched) return u;
miss:
    Py_DECREF(u);
    return NULL;
}

static PyObject *dec(Node *n, Rd *r) {
    const unsigned char *s;
    Py_ssize_t len;
    unsigned long long v;
    if (r->depth >= MAX_DEPTH) return NULL;
    switch (n->code) {
    case N_UINT:
        if (rd_uint(r, &v) || v < n->lo || v > n->hi) return NULL;
        return PyLong_FromUnsignedLongLong(v);
    case N_VERSION:
        if (rd_uint(r, &v) || v != n->lo) return NULL;
        return PyLong_FromUnsignedLongLong(v);
    case N_BOOL:
        if (r->p >= r->end) return NULL;
        if (*r->p == 0xc2) {
            r->p++;
            Py_RETURN_FALSE;
        }
        if (*r->p == 0xc3) {
            r->p++;
            Py_RETURN_TRUE;
        }
        return NULL;
    case N_BIN:
        if (rd_bin(r, &s, &len) || len < n->min || len > n->max) return NULL;
        return PyBytes_FromStringAndSize((const char *)s, len);
    case N_STR:
        return dec_str(r, n);
    case N_CHOICE: {
        if (rd_str(r, &s, &len)) return NULL;
        PyObject *u = PyUnicode_DecodeUTF8((const char *)s, len, "strict");
        if (u == NULL) return NULL;
        if (PySet_Contains(n->obj, u) == 1) return u;
        Py_DECREF(u);
        return NULL;
    }
    case N_OPTIONAL:
        if (r->p < r->end && *r->p == 0xc0) {
            r->p++;
            Py_RETURN_NONE;
        }
        r->depth++;
        PyObject *inner = dec(n->a, r);
        r->depth--;
        return inner;
    case N_SEQ: {
        if (rd_array(r, &len) || len < n->min || len > n->max) return NULL;
        PyObject *t = PyTuple_New(len);
        if (t == NULL) return NULL;
        r->depth++;
        for (Py_ssize_t i = 0; i < len; i++) {
            PyObject *x = dec(n->a, r);
            if (x == NULL) {
                r->depth--;
                Py_DECREF(t);
                return NULL;
            }
            PyTuple_SET_ITEM(t, i, x);
        }
        r->depth--;
        if (n->sorted_unique && len > 1) {
            PyObject *prev = NULL;
            for (Py_ssize_t i = 0; i < len; i++) {
                PyObject *k = PyTuple_GET_ITEM(t, i);
                if (n->obj != NULL) {
                    k = PyObject_CallOneArg(n->obj, k);
                    if (k == NULL) {
                        Py_XDECREF(prev);
                        goto unsorted;
                    }
                } else {
                    Py_INCREF(k);
                }
                if (prev != NULL) {
                    int lt = PyObject_RichCompareBool(prev, k, Py_LT);
                    Py_DECREF(prev);
                    if (lt != 1) {
                        Py_DECREF(k);
                        goto unsorted;
                    }
                }
                prev = k;
            }
            Py_XDECREF(prev);
        }
        return t;
    unsorted:
        Py_DECREF(t);
        return NULL;
    }
    case N_RECORD: {
        if (rd_array(r, &len) || len != n->nfields) return NULL;
        r->depth++;
        PyObject *out = dec_fields(n, r);
        r->depth--;
        return out;
    }
    case N_VARIANT: {
        if (rd_array(r, &len) || len < 1 || rd_uint(r, &v) || v > 255) return NULL;
        Node *rec = n->kinds[v];
        if (rec == NULL || len - 1 != rec->nfields) return NULL;
        r->depth++;
        PyObject *out = dec_fields(rec, r);
        r->depth--;
        return out;
    }
    case N_MAP: {
        if (rd_map(r, &len) || len > n->max) return NULL;
        PyObject *t = PyTuple_New(len);
        if (t == NULL) return NULL;
        const unsigned char *prev = NULL;
        Py_ssize_t prev_len = 0;
        r->depth++;
        for (Py_ssize_t i = 0; i < len; i++) {
            Rd hr = *r; /* the key's UTF-8 bytes, read ahead of decoding it */
            const unsigned char *key_at;
            Py_ssize_t klen;
            if (rd_str(&hr, &key_at, &klen)) goto map_fail;
            PyObject *k = dec_str(r, n->a);
            if (k == NULL) goto map_fail;
            if (prev != NULL) {
                Py_ssize_t m = prev_len < klen ? prev_len : klen;
                int c = memcmp(prev, key_at, (size_t)m);
                if (c > 0 || (c == 0 && prev_len >= klen)) {
                    Py_DECREF(k);
                    goto map_fail;
                }
            }
            prev = key_at;
            prev_len = klen;
            PyObject *x = dec(n->b, r);
            if (x == NULL) {
                Py_DECREF(k);
                goto map_fail;
            }
            PyObject *pair = PyTuple_New(2);
            if (pair == NULL) {
                Py_DECREF(k);
                Py_DECREF(x);
                goto map_fail;
            }
            PyTuple_SET_ITEM(pair, 0, k);
            PyTuple_SET_ITEM(pair, 1, x);
            PyTuple_SET_ITEM(t, i, pair);
        }
        r->depth--;
        return t;
    map_fail:
        r->depth--;
        Py_DECREF(t);
        return NULL;
    }
    case N_SCALAR: {
        if (r->p >= r->end) return NULL;
        unsigned char h = *r->p;
        if (h <= 0x7f || (h >= 0xcc && h <= 0xcf)) {
            if (rd_uint(r, &v)) return NULL;
            return PyLong_FromUnsignedLongLong(v);
        }
        if (h >= 0xe0 || (h >= 0xd0 && h <= 0xd3)) {
            long long sv;
            if (rd_negative(r, &sv)) return NULL;
            return PyLong_FromLongLong(sv);
        }
        if ((h >= 0xa0 && h <= 0xbf) || (h >= 0xd9 && h <= 0xdb)) {
            if (rd_str(r, &s, &len) || len > n->max) return NULL;
            return PyUnicode_DecodeUTF8((const char *)s, len, "strict");
        }
        if (h >= 0xc4 && h <= 0xc6) {
            if (rd_bin(r, &s, &len) || len > n->max) return NULL;
            return PyBytes_FromStringAndSize((const char *)s, len);
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

static PyObject *py_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode(schema, data, max_bytes)");
        return NULL;
    }
    Node *root = PyCapsule_GetPointer(args[0], "ledger._codec_native.schema");
    if (root == NULL) return NULL;
    if (!PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "data must be bytes");
        return NULL;
    }
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[2]);
    if (max_bytes == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    if (size == 0 || size > max_bytes) {
        Py_INCREF(MISS);
        return MISS;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Rd r = {p, p + size, 0};
    PyObject *out = dec(root, &r);
    if (out != NULL && r.p != r.end) {
        Py_DECREF(out);
        out = NULL;
    }
    if (out == NULL) {
        PyErr_Clear(); /* whatever went wrong, the Python decoder decides */
        Py_INCREF(MISS);
        return MISS;
    }
    return out;
}

/* ---- record makers --------------------------------------------------------------------------------------------
 *
 *     maker(cls, names) -> make      make(*fields) is the object ledger.codec.constructor(cls) builds
 *
 * For a frozen, slotted dataclass (ledger.codec.constructor checks that; here each name must be one of the class's
 * own object slots): make(a0, ..., an) allocates the instance as object.__new__(cls) does (the type's tp_alloc) and
 * stores each argument in its slot, exactly what the Python constructor's member-descriptor writes do, without a
 * Python frame or a descriptor call per field. Positional arguments only, exactly len(names) of them. */


/* Makers and encoders are not collector types: they hold their class (and an encoder its fallback) and are kept
 * for the process's life in ledger.codec's caches; nothing refers back to them from what they hold. */
typedef struct {
    PyObject_VAR_HEAD /* ob_size: the number of fields */
    vectorcallfunc vectorcall;
    PyTypeObject *cls;
    Py_ssize_t offsets[1]; /* Py_SIZE of them */
} Maker;

static PyObject *maker_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Maker *m = (Maker *)self;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_Format(PyExc_TypeError, "make_%s takes positional arguments only", m->cls->tp_name);
        return NULL;
    }
    if (n != Py_SIZE(m)) {
        PyErr_Format(PyExc_TypeError, "make_%s takes %zd arguments (%zd given)", m->cls->tp_name, Py_SIZE(m), n);
        return NULL;
    }
    PyObject *o = m->cls->tp_alloc(m->cls, 0);
    if (o == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject **slot = (PyObject **)((char *)o + m->offsets[i]);
        Py_INCREF(args[i]);
        *slot = args[i]; /* a fresh object: every slot is still NULL */
    }
    return o;
}

static void maker_dealloc(PyObject *self) {
    Py_DECREF(((Maker *)self)->cls);
    PyObject_Free(self);
}

static PyObject *maker_repr(PyObject *self) {
    return PyUnicode_FromFormat("<native make_%s>", ((Maker *)self)->cls->tp_name);
}

static PyTypeObject MakerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ledger._codec_native.Maker",
    .tp_basicsize = offsetof(Maker, offsets),
    .tp_itemsize = sizeof(Py_ssize_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Maker, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = maker_dealloc,
    .tp_repr = maker_repr,
};

static PyObject *py_maker(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyType_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "maker(cls, names: tuple)");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    PyObject *names = args[1];
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (cls->tp_alloc == NULL || cls->tp_new != PyBaseObject_Type.tp_new ||
        PyType_HasFeature(cls, Py_TPFLAGS_IS_ABSTRACT)) {
        PyErr_Format(PyExc_TypeError, "%s is not built by object.__new__", cls->tp_name);
        return NULL;
    }
    Maker *m = PyObject_NewVar(Maker, &MakerType, n);
    if (m == NULL) return NULL;
    m->vectorcall = maker_call;
    Py_INCREF(cls);
    m->cls = cls;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        PyObject *d = PyUnicode_Check(name) ? PyDict_GetItemWithError(cls->tp_dict, name) : NULL; /* borrowed */
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type) || PyDescr_TYPE(d) != cls) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "%R is not a slot of %s", name, cls->tp_name);
            Py_DECREF(m);
            return NULL;
        }
        PyMemberDef *def = ((PyMemberDescrObject *)d)->d_member;
        if (def->type != T_OBJECT_EX || (def->flags & READONLY) || def->offset < (Py_ssize_t)sizeof(PyObject) ||
            def->offset + (Py_ssize_t)sizeof(PyObject *) > cls->tp_basicsize) {
            PyErr_Format(PyExc_TypeError, "%R is not a writable object slot of %s", name, cls->tp_name);
            Py_DECREF(m);
            return NULL;
        }
        for (Py_ssize_t j = 0; j < i; j++) {
            if (m->offsets[j] == def->offset) { /* a slot named twice would be written twice: one reference lost */
                PyErr_Format(PyExc_TypeError, "%R is named twice", name);
                Py_DECREF(m);
                return NULL;
            }
        }
        m->offsets[i] = def->offset;
    }
    return (PyObject *)m;
}

/* ---- trusted encoding ------------------------------------------------------------------------------------------
 *
 *     encoder(schema, fallback) -> encode      encode(value) -> bytes
 *
 * encode_trusted's native path for values this ledger built itself: it walks `value` along the compiled schema and
 * writes the canonical msgpack (what msgpack-python's Packer(use_bin_type=True) writes for the primitive tree that
 * ledger.codec's fast dumpers build) in one pass. Records are read through their native maker's slot offsets. It
 * encodes only what it can write exactly like the Python path: exact int, str, bytes, bool, None, tuple/list and
 * record types; ints in the 64-bit ranges; StrMap pairs with strictly ascending keys. Anything else (a record
 * class without a native maker, an int subclass, an unexpected type) makes it call `fallback(value)`, the Python
 * path, whose bytes or exception are the answer. tests/ledger/test_codec_native.py compares both. */

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    char small[512];
} Wr;

static int wr_grow(Wr *w, Py_ssize_t need) {
    Py_ssize_t cap = w->cap;
    while (cap - w->len < need) {
        if (cap > PY_SSIZE_T_MAX / 2) return -1;
        cap *= 2;
    }
    char *nb;
    if (w->buf == w->small) {
        nb = PyMem_Malloc(cap);
        if (nb != NULL) memcpy(nb, w->buf, w->len);
    } else {
        nb = PyMem_Realloc(w->buf, cap);
    }
    if (nb == NULL) return -1;
    w->buf = nb;
    w->cap = cap;
    return 0;
}

static inline int wr_put(Wr *w, const void *p, Py_ssize_t n) {
    if (w->cap - w->len < n && wr_grow(w, n)) return -1;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static inline int wr_hdr(Wr *w, unsigned char tag, unsigned long long v, int bytes) {
    unsigned char b[9];
    b[0] = tag;
    for (int i = 0; i < bytes; i++) b[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return wr_put(w, b, 1 + bytes);
}

static int wr_uint(Wr *w, unsigned long long v) {
    if (v < 0x80) {
        unsigned char b = (unsigned char)v;
        return wr_put(w, &b, 1);
    }
    if (v <= 0xff) return wr_hdr(w, 0xcc, v, 1);
    if (v <= 0xffff) return wr_hdr(w, 0xcd, v, 2);
    if (v <= 0xffffffffULL) return wr_hdr(w, 0xce, v, 4);
    return wr_hdr(w, 0xcf, v, 8);
}

static int wr_int(Wr *w, long long v) { /* v < 0 */
    if (v >= -32) {
        unsigned char b = (unsigned char)(v & 0xff);
        return wr_put(w, &b, 1);
    }
    if (v >= -128) return wr_hdr(w, 0xd0, (unsigned long long)v & 0xff, 1);
    if (v >= -32768) return wr_hdr(w, 0xd1, (unsigned long long)v & 0xffff, 2);
    if (v >= -2147483648LL) return wr_hdr(w, 0xd2, (unsigned long long)v & 0xffffffffULL, 4);
    return wr_hdr(w, 0xd3, (unsigned long long)v, 8);
}

static int wr_len(Wr *w, Py_ssize_t n, unsigned char fix, Py_ssize_t fixmax, unsigned char t8, unsigned char t16,
                  unsigned char t32) {
    if (fix != 0 && n <= fixmax) {
        unsigned char b = (unsigned char)(fix | n);
        return wr_put(w, &b, 1);
    }
    if (t8 != 0 && n <= 0xff) return wr_hdr(w, t8, (unsigned long long)n, 1);
    if (n <= 0xffff) return wr_hdr(w, t16, (unsigned long long)n, 2);
    if ((unsigned long long)n <= 0xffffffffULL) return wr_hdr(w, t32, (unsigned long long)n, 4);
    return -1;
}

/* Each returns 0 when written, -1 to give up (the caller then uses the fallback; any Python error is cleared). */
static int enc_int(Wr *w, PyObject *x, int allow_negative) {
    if (!PyLong_CheckExact(x)) return -1;
    int overflow;
    long long sv = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow == 0) {
        if (sv == -1 && PyErr_Occurred()) return -1;
        if (sv >= 0) return wr_uint(w, (unsigned long long)sv);
        return allow_negative ? wr_int(w, sv) : -1;
    }
    if (overflow < 0) return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(x);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    return wr_uint(w, v);
}

static int wr_str(Wr *w, const char *s, Py_ssize_t n) { /* UTF-8 bytes under a str header */
    if (wr_len(w, n, 0xa0, 31, 0xd9, 0xda, 0xdb)) return -1;
    return wr_put(w, s, n);
}

static int enc_str(Wr *w, PyObject *x) {
    if (!PyUnicode_CheckExact(x)) return -1;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(x, &n);
    if (s == NULL) return -1;
    return wr_str(w, s, n);
}

static int enc_bin(Wr *w, PyObject *x) {
    if (!PyBytes_CheckExact(x)) return -1;
    Py_ssize_t n = PyBytes_GET_SIZE(x);
    if (wr_len(w, n, 0, 0, 0xc4, 0xc5, 0xc6)) return -1;
    return wr_put(w, PyBytes_AS_STRING(x), n);
}

static int enc(Node *n, PyObject *x, Wr *w, int depth);

/* A StrMap's value: the Python path packs it as it is (StrMap's fast dumper is `dict`, the values are not converted
 * along the value type), so it is written as msgpack writes a plain value: nil, a bool, an int, a str or a bytes;
 * anything else goes to the fallback. */
static int enc_plain(Wr *w, PyObject *x) {
    unsigned char b;
    if (x == Py_None) b = 0xc0;
    else if (x == Py_True) b = 0xc3;
    else if (x == Py_False) b = 0xc2;
    else if (PyLong_CheckExact(x)) return enc_int(w, x, 1);
    else if (PyUnicode_CheckExact(x)) return enc_str(w, x);
    else if (PyBytes_CheckExact(x)) return enc_bin(w, x);
    else return -1;
    return wr_put(w, &b, 1);
}

static int enc_fields(Node *rec, PyObject *x, Wr *w, int depth) {
    if (!Py_IS_TYPE(rec->obj, &MakerType)) return -1;
    Maker *m = (Maker *)rec->obj;
    if (!Py_IS_TYPE(x, m->cls) || Py_SIZE(m) != rec->nfields) return -1;
    for (Py_ssize_t i = 0; i < rec->nfields; i++) {
        PyObject *f = *(PyObject **)((char *)x + m->offsets[i]);
        if (f == NULL || enc(rec->fields[i], f, w, depth + 1)) return -1;
    }
    return 0;
}

static int enc(Node *n, PyObject *x, Wr *w, int depth) {
    if (depth >= MAX_DEPTH) return -1;
    switch (n->code) {
    case N_UINT:
    case N_VERSION:
        return enc_int(w, x, 0);
    case N_BOOL: {
        unsigned char b;
        if (x == Py_True) b = 0xc3;
        else if (x == Py_False) b = 0xc2;
        else return -1;
        return wr_put(w, &b, 1);
    }
    case N_BIN:
        return enc_bin(w, x);
    case N_STR:
    case N_CHOICE:
        return enc_str(w, x);
    case N_OPTIONAL:
        if (x == Py_None) {
            unsigned char b = 0xc0;
            return wr_put(w, &b, 1);
        }
        return enc(n->a, x, w, depth + 1);
    case N_SEQ: {
        if (!PyTuple_CheckExact(x) && !PyList_CheckExact(x)) return -1;
        Py_ssize_t len = PySequence_Fast_GET_SIZE(x);
        if (wr_len(w, len, 0x90, 15, 0, 0xdc, 0xdd)) return -1;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(x); i++) /* a list cannot change: no Python runs */
            if (enc(n->a, PySequence_Fast_GET_ITEM(x, i), w, depth + 1)) return -1;
        return 0;
    }
    case N_RECORD:
        if (wr_len(w, n->nfields, 0x90, 15, 0, 0xdc, 0xdd)) return -1;
        return enc_fields(n, x, w, depth);
    case N_VARIANT: {
        for (int k = 0; k < 256; k++) {
            Node *rec = n->kinds[k];
            if (rec == NULL || !Py_IS_TYPE(rec->obj, &MakerType) || !Py_IS_TYPE(x, ((Maker *)rec->obj)->cls)) continue;
            if (wr_len(w, rec->nfields + 1, 0x90, 15, 0, 0xdc, 0xdd) || wr_uint(w, (unsigned long long)k)) return -1;
            return enc_fields(rec, x, w, depth);
        }
        return -1;
    }
    case N_MAP: {
        if (!PyTuple_CheckExact(x) && !PyList_CheckExact(x)) return -1;
        Py_ssize_t len = PySequence_Fast_GET_SIZE(x);
        if (wr_len(w, len, 0x80, 15, 0, 0xde, 0xdf)) return -1;
        const char *prev = NULL;
        Py_ssize_t prev_len = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(x, i);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) return -1;
            PyObject *key = PyTuple_GET_ITEM(pair, 0);
            if (!PyUnicode_CheckExact(key)) return -1;
            Py_ssize_t kl;
            const char *ks = PyUnicode_AsUTF8AndSize(key, &kl);
            if (ks == NULL) return -1;
            if (prev != NULL) { /* strictly ascending, as the ledger builds them (dict() would merge duplicates) */
                Py_ssize_t m = prev_len < kl ? prev_len : kl;
                int c = memcmp(prev, ks, (size_t)m);
                if (c > 0 || (c == 0 && prev_len >= kl)) return -1;
            }
            prev = ks;
            prev_len = kl;
            if (wr_str(w, ks, kl)) return -1;
            if (enc_plain(w, PyTuple_GET_ITEM(pair, 1))) return -1;
        }
        return 0;
    }
    case N_SCALAR:
        if (PyLong_CheckExact(x)) return enc_int(w, x, 1);
        if (PyUnicode_CheckExact(x)) return enc_str(w, x);
        if (PyBytes_CheckExact(x)) return enc_bin(w, x);
        return -1;
    default:
        return -1;
    }
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *schema; /* the capsule: keeps the compiled Node tree alive */
    Node *root;
    PyObject *fallback;
} Encoder;

static PyObject *encoder_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Encoder *e = (Encoder *)self;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "encode(value) takes one positional argument");
        return NULL;
    }
    Wr w;
    w.buf = w.small;
    w.len = 0;
    w.cap = sizeof w.small;
    int rc = enc(e->root, args[0], &w, 0);
    PyObject *out = NULL;
    if (rc == 0) out = PyBytes_FromStringAndSize(w.buf, w.len);
    if (w.buf != w.small) PyMem_Free(w.buf);
    if (out != NULL) return out;
    PyErr_Clear(); /* whatever stopped it, the Python path decides */
    return PyObject_CallOneArg(e->fallback, args[0]);
}

static void encoder_dealloc(PyObject *self) {
    Encoder *e = (Encoder *)self;
    Py_DECREF(e->schema);
    Py_DECREF(e->fallback);
    PyObject_Free(self);
}

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ledger._codec_native.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Encoder, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = encoder_dealloc,
};

static PyObject *py_encoder(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "encoder(schema, fallback)");
        return NULL;
    }
    Node *root = PyCapsule_GetPointer(args[0], "ledger._codec_native.schema");
    if (root == NULL) return NULL;
    Encoder *e = PyObject_New(Encoder, &EncoderType);
    if (e == NULL) return NULL;
    e->vectorcall = encoder_call;
    Py_INCREF(args[0]);
    e->schema = args[0];
    e->root = root;
    Py_INCREF(args[1]);
    e->fallback = args[1];
    return (PyObject *)e;
}

static PyMethodDef methods[] = {
    {"compile", (PyCFunction)py_compile, METH_O, "compile(spec) -> schema"},
    {"decode", (PyCFunction)(void (*)(void))py_decode, METH_FASTCALL, "decode(schema, data, max_bytes) -> value or MISS"},
    {"maker", (PyCFunction)(void (*)(void))py_maker, METH_FASTCALL, "maker(cls, names) -> make(*fields)"},
    {"encoder", (PyCFunction)(void (*)(void))py_encoder, METH_FASTCALL, "encoder(schema, fallback) -> encode(value)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_codec_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__codec_native(void) {
    if (PyType_Ready(&MakerType) < 0 || PyType_Ready(&EncoderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    MISS = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (MISS == NULL || PyModule_AddObjectRef(m, "MISS", MISS) < 0) {
        Py_CLEAR(MISS);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
