/* The optional native fast path of ledger/smt.py's SparseMerkleTree.update: the same batch pass over the sorted
 * changed paths, written in C, producing the same root and the same new nodes (hash -> node bytes) as the pure-Python
 * reference `SparseMerkleTree.update(changes, native=False)`; tests/ledger/test_smt_native.py compares both.
 *
 *     update(get_node, root, changes, max_key_bytes, max_value_bytes) -> (new_root, nodes)
 *
 * get_node: callable(hash bytes) -> node bytes or None (the tree's node reader); root: 32 bytes; changes: a list of
 * (key bytes, value bytes or None); a key or value breaking the limits raises InvalidChange. Deterministic, no I/O of its
 * own: only get_node is called. SHA-256 comes from OpenSSL's libcrypto (the implementation hashlib uses).
 * A node missing from the reader raises MissingNode(hash hex); a malformed node raises AssertionError, as the Python
 * reference does.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final: the direct calls, without EVP's per-call fetch */
#include <Python.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BYTES 32
#define PATH_BITS 256
#define INTERNAL_NODE_BYTES (1 + 2 * HASH_BYTES)

enum { KIND_UNKNOWN = -1, KIND_EMPTY = 0, KIND_LEAF = 1, KIND_INTERNAL = 2 };

static const unsigned char EMPTY[HASH_BYTES] = {0};
/* (root, nodes) for the caller; takes over the reference to `out` (released on failure too). */
static PyObject *pack_result(const unsigned char *root, PyObject *out) {
    PyObject *r = PyBytes_FromStringAndSize((const char *)root, HASH_BYTES);
    if (r == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *res = PyTuple_Pack(2, r, out);
    Py_DECREF(r);
    Py_DECREF(out);
    return res;
}

static PyObject *MissingNode = NULL;
static PyObject *InvalidChange = NULL;

typedef struct {
    unsigned char path[HASH_BYTES];
    PyObject *value;                 /* borrowed; NULL deletes */
    const unsigned char *known;      /* the leaf hash of an untouched existing leaf, else NULL */
    unsigned char known_buf[HASH_BYTES];
} Item;

typedef struct {
    PyObject *get_node;
    PyObject *nodes; /* borrowed: the dict when get_node is that dict's own `get` (MemoryNodes), else NULL */
    PyObject *out;   /* dict hash -> node bytes */
} Ctx;

/* The dict whose bound `get` method `get_node` is, or NULL: reading that dict directly gives the same answers (its
 * value for the key, None when absent) without a Python-level call per node. */
static PyObject *dict_behind(PyObject *get_node) {
    if (!PyCFunction_Check(get_node)) return NULL;
    PyObject *self = PyCFunction_GET_SELF(get_node);
    if (self == NULL || !PyDict_CheckExact(self)) return NULL;
    const char *name = ((PyCFunctionObject *)get_node)->m_ml->ml_name;
    return strcmp(name, "get") == 0 ? self : NULL;
}

/* SHA-256 through the low-level calls (OpenSSL 3's one-shot SHA256() fetches the algorithm on every call). */
static inline void sha256(const unsigned char *data, size_t len, unsigned char *out) {
    SHA256_CTX sc;
    SHA256_Init(&sc);
    SHA256_Update(&sc, data, len);
    SHA256_Final(out, &sc);
}

static inline int is_empty(const unsigned char *h) { return memcmp(h, EMPTY, HASH_BYTES) == 0; }

static inline int path_bit(const unsigned char *path, int depth) {
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1;
}

/* Record a new node: out[h] = node. */
static int emit(Ctx *ctx, const unsigned char *h, const unsigned char *node, Py_ssize_t len) {
    PyObject *key = PyBytes_FromStringAndSize((const char *)h, HASH_BYTES);
    if (key == NULL) return -1;
    PyObject *val = PyBytes_FromStringAndSize((const char *)node, len);
    if (val == NULL) {
        Py_DECREF(key);
        return -1;
    }
    int rc = PyDict_SetItem(ctx->out, key, val);
    Py_DECREF(key);
    Py_DECREF(val);
    return rc;
}

/* A new leaf for (path, value): its hash into h, its node recorded. */
static int make_leaf(Ctx *ctx, const unsigned char *path, PyObject *value, unsigned char *h) {
    char *vbuf;
    Py_ssize_t vlen;
    if (PyBytes_AsStringAndSize(value, &vbuf, &vlen) < 0) return -1;
    unsigned char vhash[HASH_BYTES];
    sha256((const unsigned char *)vbuf, (size_t)vlen, vhash);
    unsigned char pre[1 + 2 * HASH_BYTES];
    pre[0] = 0x00;
    memcpy(pre + 1, path, HASH_BYTES);
    memcpy(pre + 1 + HASH_BYTES, vhash, HASH_BYTES);
    sha256(pre, sizeof pre, h);
    /* node bytes: 0x00 || path || value */
    PyObject *key = PyBytes_FromStringAndSize((const char *)h, HASH_BYTES);
    if (key == NULL) return -1;
    PyObject *node = PyBytes_FromStringAndSize(NULL, 1 + HASH_BYTES + vlen);
    if (node == NULL) {
        Py_DECREF(key);
        return -1;
    }
    char *nb = PyBytes_AS_STRING(node);
    nb[0] = 0x00;
    memcpy(nb + 1, path, HASH_BYTES);
    memcpy(nb + 1 + HASH_BYTES, vbuf, (size_t)vlen);
    int rc = PyDict_SetItem(ctx->out, key, node);
    Py_DECREF(key);
    Py_DECREF(node);
    return rc;
}

/* An internal node (left, right): its hash into h, its node recorded. */
static int make_internal(Ctx *ctx, const unsigned char *left, const unsigned char *right, unsigned char *h) {
    unsigned char node[INTERNAL_NODE_BYTES];
    node[0] = 0x01;
    memcpy(node + 1, left, HASH_BYTES);
    memcpy(node + 1 + HASH_BYTES, right, HASH_BYTES);
    sha256(node, INTERNAL_NODE_BYTES, h);
    return emit(ctx, h, node, INTERNAL_NODE_BYTES);
}

/* Read node `h` (a new reference to its bytes), checking its shape as the Python reference's _load does. */
static PyObject *load(Ctx *ctx, const unsigned char *h) {
    PyObject *key = PyBytes_FromStringAndSize((const char *)h, HASH_BYTES);
    if (key == NULL) return NULL;
    PyObject *node;
    if (ctx->nodes != NULL) {
        node = PyDict_GetItemWithError(ctx->nodes, key); /* borrowed */
        if (node == NULL && PyErr_Occurred()) {
            Py_DECREF(key);
            return NULL;
        }
        node = node == NULL ? Py_NewRef(Py_None) : Py_NewRef(node);
    } else {
        node = PyObject_CallOneArg(ctx->get_node, key);
    }
    Py_DECREF(key);
    if (node == NULL) return NULL;
    if (node == Py_None) {
        Py_DECREF(node);
        char hex[2 * HASH_BYTES + 1];
        for (int i = 0; i < HASH_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
        PyErr_Format(MissingNode, "node %s is not in the node store", hex);
        return NULL;
    }
    if (!PyBytes_Check(node)) {
        Py_DECREF(node);
        PyErr_SetString(PyExc_TypeError, "get_node must return bytes or None");
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(node);
    Py_ssize_t n = PyBytes_GET_SIZE(node);
    if (n >= 1 && b[0] == 0x01) {
        if (n != INTERNAL_NODE_BYTES) {
            Py_DECREF(node);
            PyErr_SetString(PyExc_AssertionError, "internal node must be 65 bytes");
            return NULL;
        }
    } else if (!(n >= 1 + HASH_BYTES && b[0] == 0x00)) {
        Py_DECREF(node);
        PyErr_SetString(PyExc_AssertionError, "malformed leaf node");
        return NULL;
    }
    return node;
}

static int kind_of(Ctx *ctx, const unsigned char *h, int known) {
    if (known != KIND_UNKNOWN) return known;
    if (is_empty(h)) return KIND_EMPTY;
    PyObject *node = load(ctx, h);
    if (node == NULL) return -2;
    int kind = PyBytes_AS_STRING(node)[0] == 0x00 ? KIND_LEAF : KIND_INTERNAL;
    Py_DECREF(node);
    return kind;
}

/* The first index in [lo, hi) whose path has bit `depth` set (all share the first `depth` bits, sorted). */
static Py_ssize_t split(Item **items, Py_ssize_t lo, Py_ssize_t hi, int depth) {
    while (lo < hi) {
        Py_ssize_t m = lo + (hi - lo) / 2;
        if (path_bit(items[m]->path, depth))
            hi = m;
        else
            lo = m + 1;
    }
    return lo;
}

/* A fresh subtree at `depth` holding exactly leaves[lo:hi] (sorted, distinct paths). Kind into *kind. */
static int build(Ctx *ctx, int depth, Item **leaves, Py_ssize_t lo, Py_ssize_t hi, unsigned char *h, int *kind) {
    Py_ssize_t n = hi - lo;
    if (n == 0) {
        memset(h, 0, HASH_BYTES);
        *kind = KIND_EMPTY;
        return 0;
    }
    if (n == 1) {
        Item *it = leaves[lo];
        *kind = KIND_LEAF;
        if (it->known != NULL) {
            memcpy(h, it->known, HASH_BYTES);
            return 0;
        }
        return make_leaf(ctx, it->path, it->value, h);
    }
    if (depth >= PATH_BITS) {
        PyErr_SetString(PyExc_AssertionError, "two leaves with the same path");
        return -1;
    }
    Py_ssize_t mid = split(leaves, lo, hi, depth);
    unsigned char left[HASH_BYTES], right[HASH_BYTES];
    int k;
    if (build(ctx, depth + 1, leaves, lo, mid, left, &k) < 0) return -1;
    if (build(ctx, depth + 1, leaves, mid, hi, right, &k) < 0) return -1;
    *kind = KIND_INTERNAL;
    return make_internal(ctx, left, right, h);
}

static int join(Ctx *ctx, const unsigned char *left, int lk, const unsigned char *right, int rk, unsigned char *h,
                int *kind) {
    if (is_empty(left)) {
        if (is_empty(right)) {
            memset(h, 0, HASH_BYTES);
            *kind = KIND_EMPTY;
            return 0;
        }
        int k = kind_of(ctx, right, rk);
        if (k == -2) return -1;
        if (k == KIND_LEAF) {
            memmove(h, right, HASH_BYTES);
            *kind = KIND_LEAF;
            return 0;
        }
    } else if (is_empty(right)) {
        int k = kind_of(ctx, left, lk);
        if (k == -2) return -1;
        if (k == KIND_LEAF) {
            memmove(h, left, HASH_BYTES);
            *kind = KIND_LEAF;
            return 0;
        }
    }
    *kind = KIND_INTERNAL;
    return make_internal(ctx, left, right, h);
}

/* The single-change case: walk down, then hash back up. `h` in, the new subtree hash out (may alias). */
static int apply_one(Ctx *ctx, const unsigned char *h, int depth, Item *item, unsigned char *out_h, int *out_kind) {
    unsigned char trail_sib[PATH_BITS][HASH_BYTES];
    unsigned char trail_bit[PATH_BITS];
    int ntrail = 0;
    unsigned char cur[HASH_BYTES];
    memcpy(cur, h, HASH_BYTES);
    int d = depth;
    int leaf_found = 0;
    unsigned char leaf_path[HASH_BYTES];
    while (!is_empty(cur)) {
        PyObject *node = load(ctx, cur);
        if (node == NULL) return -1;
        const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(node);
        if (b[0] == 0x00) {
            memcpy(leaf_path, b + 1, HASH_BYTES);
            leaf_found = 1;
            Py_DECREF(node);
            break;
        }
        if (d >= PATH_BITS) {
            Py_DECREF(node);
            PyErr_SetString(PyExc_AssertionError, "malformed internal node or too deep");
            return -1;
        }
        if (path_bit(item->path, d)) {
            trail_bit[ntrail] = 1;
            memcpy(trail_sib[ntrail], b + 1, HASH_BYTES);
            memcpy(cur, b + 1 + HASH_BYTES, HASH_BYTES);
        } else {
            trail_bit[ntrail] = 0;
            memcpy(trail_sib[ntrail], b + 1 + HASH_BYTES, HASH_BYTES);
            memcpy(cur, b + 1, HASH_BYTES);
        }
        ntrail++;
        Py_DECREF(node);
        d++;
    }
    unsigned char nw[HASH_BYTES];
    int kind;
    if (!leaf_found || memcmp(leaf_path, item->path, HASH_BYTES) == 0) {
        if (item->value == NULL) {
            if (!leaf_found) { /* deleting an absent key: nothing changes */
                memmove(out_h, h, HASH_BYTES);
                *out_kind = KIND_UNKNOWN;
                return 0;
            }
            memset(nw, 0, HASH_BYTES);
            kind = KIND_EMPTY;
        } else {
            if (make_leaf(ctx, item->path, item->value, nw) < 0) return -1;
            kind = KIND_LEAF;
        }
    } else {
        if (item->value == NULL) { /* another key's leaf sits where this key would be: it is absent */
            memmove(out_h, h, HASH_BYTES);
            *out_kind = KIND_UNKNOWN;
            return 0;
        }
        Item other;
        memcpy(other.path, leaf_path, HASH_BYTES);
        other.value = NULL;
        memcpy(other.known_buf, cur, HASH_BYTES);
        other.known = other.known_buf;
        Item *pair[2];
        if (memcmp(leaf_path, item->path, HASH_BYTES) < 0) {
            pair[0] = &other;
            pair[1] = item;
        } else {
            pair[0] = item;
            pair[1] = &other;
        }
        if (build(ctx, d, pair, 0, 2, nw, &kind) < 0) return -1;
    }
    /* Hash back up, collapsing a lone leaf upwards. */
    for (int i = ntrail - 1; i >= 0; i--) {
        const unsigned char *sib = trail_sib[i];
        if (is_empty(sib)) {
            if (kind == KIND_LEAF || kind == KIND_EMPTY) continue;
        } else if (kind == KIND_EMPTY) {
            int k = kind_of(ctx, sib, KIND_UNKNOWN);
            if (k == -2) return -1;
            if (k == KIND_LEAF) {
                memcpy(nw, sib, HASH_BYTES);
                kind = KIND_LEAF;
                continue;
            }
        }
        unsigned char up[HASH_BYTES];
        if (trail_bit[i]) {
            if (make_internal(ctx, sib, nw, up) < 0) return -1;
        } else {
            if (make_internal(ctx, nw, sib, up) < 0) return -1;
        }
        memcpy(nw, up, HASH_BYTES);
        kind = KIND_INTERNAL;
    }
    memcpy(out_h, nw, HASH_BYTES);
    *out_kind = kind;
    return 0;
}

/* Apply items[lo:hi] (all sharing the first `depth` path bits) to the subtree `h` at `depth`. */
static int apply(Ctx *ctx, const unsigned char *h, int depth, Item **items, Py_ssize_t lo, Py_ssize_t hi,
                 unsigned char *out_h, int *out_kind) {
    if (hi - lo == 1) return apply_one(ctx, h, depth, items[lo], out_h, out_kind);
    if (is_empty(h)) {
        Item **leaves = PyMem_Malloc(sizeof(Item *) * (size_t)(hi - lo));
        if (leaves == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        Py_ssize_t n = 0;
        for (Py_ssize_t i = lo; i < hi; i++)
            if (items[i]->value != NULL) leaves[n++] = items[i];
        int rc = build(ctx, depth, leaves, 0, n, out_h, out_kind);
        PyMem_Free(leaves);
        return rc;
    }
    PyObject *node = load(ctx, h);
    if (node == NULL) return -1;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(node);
    if (b[0] == 0x00) {
        Item keep;
        memcpy(keep.path, b + 1, HASH_BYTES);
        keep.value = NULL;
        memcpy(keep.known_buf, h, HASH_BYTES);
        keep.known = keep.known_buf;
        Py_DECREF(node);
        Item **leaves = PyMem_Malloc(sizeof(Item *) * (size_t)(hi - lo + 1));
        if (leaves == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        int touched = 0;
        for (Py_ssize_t i = lo; i < hi; i++)
            if (memcmp(items[i]->path, keep.path, HASH_BYTES) == 0) touched = 1;
        Py_ssize_t n = 0;
        int placed = touched;
        for (Py_ssize_t i = lo; i < hi; i++) {
            if (items[i]->value == NULL) continue;
            if (!placed && memcmp(keep.path, items[i]->path, HASH_BYTES) < 0) {
                leaves[n++] = &keep;
                placed = 1;
            }
            leaves[n++] = items[i];
        }
        if (!placed) leaves[n++] = &keep;
        int rc = build(ctx, depth, leaves, 0, n, out_h, out_kind);
        PyMem_Free(leaves);
        return rc;
    }
    if (depth >= PATH_BITS) {
        Py_DECREF(node);
        PyErr_SetString(PyExc_AssertionError, "tree deeper than the path length");
        return -1;
    }
    unsigned char left[HASH_BYTES], right[HASH_BYTES];
    memcpy(left, b + 1, HASH_BYTES);
    memcpy(right, b + 1 + HASH_BYTES, HASH_BYTES);
    Py_DECREF(node);
    Py_ssize_t mid = split(items, lo, hi, depth);
    int lk = KIND_UNKNOWN, rk = KIND_UNKNOWN;
    if (mid > lo && apply(ctx, left, depth + 1, items, lo, mid, left, &lk) < 0) return -1;
    if (hi > mid && apply(ctx, right, depth + 1, items, mid, hi, right, &rk) < 0) return -1;
    return join(ctx, left, lk, right, rk, out_h, out_kind);
}

static int cmp_items(const void *a, const void *b) {
    const Item *x = *(Item *const *)a;
    const Item *y = *(Item *const *)b;
    return memcmp(x->path, y->path, HASH_BYTES);
}

static PyObject *smt_update(PyObject *self, PyObject *args) {
    PyObject *get_node, *changes;
    Py_buffer root;
    Py_ssize_t max_key, max_value;
    if (!PyArg_ParseTuple(args, "Oy*O!nn:update", &get_node, &root, &PyList_Type, &changes, &max_key, &max_value))
        return NULL;
    if (root.len != HASH_BYTES) {
        PyBuffer_Release(&root);
        PyErr_SetString(PyExc_ValueError, "root must be 32 bytes");
        return NULL;
    }
    unsigned char root_h[HASH_BYTES];
    memcpy(root_h, root.buf, HASH_BYTES);
    PyBuffer_Release(&root);
    Py_ssize_t n = PyList_GET_SIZE(changes);
    /* The limits first, as the Python reference checks them: keys bytes of at most max_key bytes, values bytes of at
     * most max_value bytes or None. A violation raises InvalidChange (the caller's InvalidStateChangeError). */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(changes, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "changes must be (key, value) pairs");
            return NULL;
        }
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) > max_key) {
            PyErr_Format(InvalidChange, "state keys are bytes of at most %zd bytes", max_key);
            return NULL;
        }
        if (value != Py_None && (!PyBytes_Check(value) || PyBytes_GET_SIZE(value) > max_value)) {
            PyErr_Format(InvalidChange, "state values are bytes of at most %zd bytes or None", max_value);
            return NULL;
        }
    }
    PyObject *out = PyDict_New();
    if (out == NULL) return NULL;
    if (n == 0) {
        return pack_result(root_h, out);
    }
    /* Our own list of the (immutable) pairs: the keys and values stay alive for the whole call even if get_node,
     * which is Python code, changed the caller's list. */
    changes = PyList_GetSlice(changes, 0, n);
    if (changes == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    Item *store = PyMem_Malloc(sizeof(Item) * (size_t)n);
    Item **items = PyMem_Malloc(sizeof(Item *) * (size_t)n);
    if (store == NULL || items == NULL) {
        PyMem_Free(store);
        PyMem_Free(items);
        Py_DECREF(changes);
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(changes, i);
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        sha256((const unsigned char *)PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key), store[i].path);
        store[i].value = value == Py_None ? NULL : value;
        store[i].known = NULL;
        items[i] = &store[i];
    }
    qsort(items, (size_t)n, sizeof(Item *), cmp_items);
    for (Py_ssize_t i = 1; i < n; i++) {
        if (memcmp(items[i - 1]->path, items[i]->path, HASH_BYTES) == 0) {
            PyMem_Free(store);
            PyMem_Free(items);
            Py_DECREF(changes);
            Py_DECREF(out);
            PyErr_SetString(PyExc_ValueError, "two changes with the same key");
            return NULL;
        }
    }
    Ctx ctx = {get_node, dict_behind(get_node), out};
    unsigned char new_root[HASH_BYTES];
    int kind;
    int rc = apply(&ctx, root_h, 0, items, 0, n, new_root, &kind);
    PyMem_Free(store);
    PyMem_Free(items);
    Py_DECREF(changes);
    if (rc < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return pack_result(new_root, out);
}

static PyMethodDef methods[] = {
    {"update", smt_update, METH_VARARGS,
     "update(get_node, root, changes, max_key_bytes, max_value_bytes) -> (root, nodes): ledger.smt's batch update."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "ledger._smt_native",
                                    "Native fast path of ledger.smt.SparseMerkleTree.update.", -1, methods};

PyMODINIT_FUNC PyInit__smt_native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    MissingNode = PyErr_NewException("ledger._smt_native.MissingNode", PyExc_LookupError, NULL);
    if (MissingNode == NULL || PyModule_AddObjectRef(m, "MissingNode", MissingNode) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    InvalidChange = PyErr_NewException("ledger._smt_native.InvalidChange", PyExc_ValueError, NULL);
    if (InvalidChange == NULL || PyModule_AddObjectRef(m, "InvalidChange", InvalidChange) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
