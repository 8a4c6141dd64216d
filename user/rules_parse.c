// SPDX-License-Identifier: GPL-2.0
/*
 * rules_parse.c - the rules language (CONTRACT §2) from text to a struct
 * ruleset.
 *
 * Pure user space: text in, structs and diagnostics out; nothing here knows
 * about BPF. The parser reads one statement at a time, reports every error
 * with file:line:col and goes on with the next statement, so `moat check`
 * shows all the problems of a file at once. A file is taken whole or not at
 * all: with any error the ruleset is left empty.
 *
 * Input is treated as hostile: files must be regular and at most
 * RULES_MAX_FILE_SIZE, lines at most RULES_MAX_LINE, NUL bytes and control
 * characters are refused, and the number of reported errors is capped.
 * Set files can hold millions of prefixes, so they take a lean path (one
 * prefix a line, no tokenizer) and every array grows geometrically.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules.h"

#define RULES_MAX_LINE (64 * 1024)
#define RULES_MAX_FILE_SIZE (64u << 20)
#define RULES_MAX_FILE_SIZE_MIB (RULES_MAX_FILE_SIZE >> 20)
/* Beyond this a file is garbage, not a file with mistakes. */
#define RULES_MAX_ERRORS 1000
#define RULES_SET_NAME_MAX 64
#define RULES_CT_MAX_LIMIT 16777216
#define RULES_TIMEOUT_MAX 432000
/* How much of a token a message quotes. */
#define TOK_SHOW_MAX 60

enum tok_kind { TOK_WORD, TOK_LBRACE, TOK_RBRACE, TOK_COMMA, TOK_EOL };

struct tok {
	enum tok_kind kind;
	const char *s; /* into the text; not NUL-terminated */
	int len;
	int line, col;
};

/* A "@name" in a rule, resolved once the whole file is read. */
struct set_ref {
	size_t rule;
	bool dst;
	const char *name; /* into the text */
	int len;
	int line, col;
};

enum setting_id {
	SETTING_CT_MAX,
	SETTING_TO_TCP_EST,
	SETTING_TO_UDP,
	SETTING_TO_UDP_STREAM,
	SETTING_TO_ICMP,
	SETTING_PASS_NDP,
	SETTING_EPHEMERAL,
	SETTING_COUNT,
};

/* The MATCH keywords; also the index of each in struct parser.seen. */
enum match_id { M_SRC, M_DST, M_SPORT, M_DPORT, M_ICMP, M_ESTABLISHED, M_COUNT };
static const char *const match_names[M_COUNT] = { "src",   "dst",  "sport",
						  "dport", "icmp", "established" };

struct parser {
	struct ruleset *rs;
	struct diags *d;
	const char *file; /* the rules file's name, owned by rs->files */
	char *dir;	  /* its directory, for relative set files; NULL = cwd */

	struct lexer {
		const char *p, *end;
		int line; /* of the line that ends before p */
	} lx;

	/* The statement being parsed, ending with a TOK_EOL. */
	struct tok *toks;
	size_t ntoks, tcap, pos;

	struct set_ref *refs;
	size_t nrefs, rcap;

	/* Line of the first NACL rule with each number, per direction. */
	int *nacl_line[2];
	/* Open addressing over rs->sets by name; slot = set index + 1. */
	int *set_hash;
	size_t hcap;
	int setting_line[SETTING_COUNT];

	size_t errors;
	bool stmt_bad; /* the current statement had an error */
	bool stopped;  /* too many errors: stop reading */
	bool nomem;
};

/* ---- small helpers ---------------------------------------------------- */

static void *grow_array(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return arr;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elem)
			return NULL;
		ncap *= 2;
	}
	p = realloc(arr, ncap * elem);
	if (!p)
		return NULL;
	*cap = ncap;
	return p;
}

__attribute__((format(printf, 5, 6))) static void perr(struct parser *ps, const char *file,
						       int line, int col, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	ps->stmt_bad = true;
	if (ps->stopped)
		return;
	if (ps->errors == RULES_MAX_ERRORS) {
		diags_add(ps->d, DIAG_ERROR, file, line, col, "too many errors (%d); stopping here",
			  RULES_MAX_ERRORS);
		ps->errors++;
		ps->stopped = true;
		return;
	}
	ps->errors++;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg) {
		/* The count still makes the parse fail. */
		diags_add(ps->d, DIAG_ERROR, file, line, col, "out of memory");
		ps->nomem = true;
		return;
	}
	diags_add(ps->d, DIAG_ERROR, file, line, col, "%s", msg);
	free(msg);
}

static void nomem(struct parser *ps)
{
	if (!ps->nomem)
		perr(ps, ps->file, 0, 0, "out of memory");
	ps->nomem = true;
}

/* Quote a token in a message: '%.*s%s' with TOK_ARGS(t). */
#define TOK_FMT "'%.*s%s'"
#define TOK_ARGS(t)                                                \
	(t)->len > TOK_SHOW_MAX ? TOK_SHOW_MAX : (t)->len, (t)->s, \
		(t)->len > TOK_SHOW_MAX ? "..." : ""

static bool tok_is(const struct tok *t, const char *word)
{
	size_t n = strlen(word);

	return t->kind == TOK_WORD && (size_t)t->len == n && !memcmp(t->s, word, n);
}

/*
 * Parse the decimal digits s[0..len) into @v. Returns 0, -EINVAL when it is
 * not a plain decimal number, -ERANGE when it is above @max.
 */
static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *v)
{
	unsigned long x = 0;
	bool big = false;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		/* Saturate instead of wrapping, so 2^64+1 is out of range, not 1. */
		if (!big)
			x = x * 10 + (unsigned long)(s[i] - '0');
		if (x > max)
			big = true;
	}
	*v = x;
	return big ? -ERANGE : 0;
}

/* ---- prefixes --------------------------------------------------------- */

enum pfx_err { PFX_OK = 0, PFX_NOT_ADDR, PFX_BAD_LEN, PFX_HOST_BITS };

static void prefix_mask(const uint8_t *in, unsigned int len, uint8_t *net, uint8_t *host)
{
	unsigned int i;

	for (i = 0; i < 16; i++) {
		uint8_t m;

		if (len >= 8 * (i + 1))
			m = 0xff;
		else if (len <= 8 * i)
			m = 0;
		else
			m = (uint8_t)(0xff00 >> (len - 8 * i));
		net[i] = in[i] & m;
		host[i] = in[i] & (uint8_t)~m;
	}
}

/*
 * The common spelling of an IPv4 address, four decimal octets without
 * leading zeros, read without inet_pton's generality: a set file of a
 * million prefixes is mostly this. Anything else is left to inet_pton
 * (which accepts all this does).
 */
static bool parse_ipv4_quad(const char *s, size_t len, uint8_t out[4])
{
	const char *end = s + len;
	unsigned octet;

	for (octet = 0; octet < 4; octet++) {
		unsigned v = 0, digits = 0;

		if (octet && (s >= end || *s++ != '.'))
			return false;
		while (s < end && *s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || digits > 3 || v > 255 || (digits > 1 && s[-(int)digits] == '0'))
			return false;
		out[octet] = (uint8_t)v;
	}
	return s == end;
}

static int hex_value(char c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	       c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 :
				      -1;
}

/*
 * The common spellings of an IPv6 address, eight groups of one to four hex
 * digits or at most six around one "::", read without inet_pton's
 * generality (which is left the rest: embedded IPv4, "::" alone or for a
 * single group). Whatever this accepts, inet_pton reads alike.
 */
static bool parse_ipv6_groups(const char *s, size_t len, uint8_t out[16])
{
	unsigned g[8], n = 0, k;
	int gap = -1;
	size_t i = 0;

	if (len > 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
	}
	while (i < len) {
		unsigned v = 0, digits = 0;
		int h;

		while (i < len && (h = hex_value(s[i])) >= 0 && digits < 5) {
			v = v * 16 + (unsigned)h;
			digits++;
			i++;
		}
		if (!digits || digits > 4 || n == 8)
			return false;
		g[n++] = v;
		if (i == len)
			break;
		if (s[i++] != ':' || i == len)
			return false;
		if (s[i] == ':') {
			if (gap >= 0)
				return false;
			gap = (int)n;
			i++;
		}
	}
	if (gap < 0 ? n != 8 : n > 6)
		return false;
	memset(out, 0, 16);
	for (k = 0; k < n; k++) {
		unsigned at = gap < 0 || (int)k < gap ? k : 8 - (n - k);

		out[2 * at] = (uint8_t)(g[k] >> 8);
		out[2 * at + 1] = (uint8_t)g[k];
	}
	return true;
}

/*
 * Parse "ADDR[/LEN]" (a bare address is a host prefix). For PFX_BAD_LEN and
 * PFX_HOST_BITS @msg holds the whole message; PFX_NOT_ADDR leaves the
 * wording to the caller, which knows what it expected instead.
 */
static enum pfx_err parse_prefix(const char *s, size_t len, struct rule_prefix *p, char *msg,
				 size_t msglen)
{
	char buf[64], host_txt[INET6_ADDRSTRLEN], net_txt[INET6_ADDRSTRLEN + 8];
	uint8_t net[16], host[16];
	const char *slash;
	unsigned long plen;
	unsigned int max;
	size_t alen;
	int af;

	memset(p, 0, sizeof(*p));
	if (len >= sizeof(buf))
		return PFX_NOT_ADDR;
	slash = memchr(s, '/', len);
	alen = slash ? (size_t)(slash - s) : len;
	if (parse_ipv4_quad(s, alen, p->addr)) {
		p->family = 4;
	} else if (parse_ipv6_groups(s, alen, p->addr)) {
		p->family = 6;
	} else {
		memcpy(buf, s, alen);
		buf[alen] = '\0';
		if (inet_pton(AF_INET, buf, p->addr) == 1)
			p->family = 4;
		else if (inet_pton(AF_INET6, buf, p->addr) == 1)
			p->family = 6;
		else
			return PFX_NOT_ADDR;
	}
	max = p->family == 4 ? 32 : 128;
	af = p->family == 4 ? AF_INET : AF_INET6;

	plen = max;
	if (slash && parse_uint(slash + 1, len - alen - 1, max, &plen)) {
		snprintf(msg, msglen, "prefix length in '%.*s' must be 0-%u for IPv%d", (int)len, s,
			 max, p->family);
		return PFX_BAD_LEN;
	}
	p->len = (uint8_t)plen;

	if (p->family == 4) { /* the common case, without the byte loop */
		uint32_t a = (uint32_t)p->addr[0] << 24 | p->addr[1] << 16 | p->addr[2] << 8 |
			     p->addr[3];

		uint32_t host = p->len >= 32 ? 0 : p->len ? a << p->len : a;

		if (!host)
			return PFX_OK;
	}
	prefix_mask(p->addr, p->len, net, host);
	if (memcmp(net, p->addr, sizeof(net))) {
		struct rule_prefix fixed = *p;

		memcpy(fixed.addr, net, sizeof(net));
		inet_ntop(af, host, host_txt, sizeof(host_txt));
		rule_prefix_format(&fixed, net_txt, sizeof(net_txt));
		snprintf(msg, msglen, "%.*s has host bits set (%s); did you mean %s?", (int)len, s,
			 host_txt, net_txt);
		return PFX_HOST_BITS;
	}
	return PFX_OK;
}

static int set_add_prefix(struct ruleset *rs, size_t si, const struct rule_prefix *p)
{
	struct rule_set *set = &rs->sets[si];
	struct rule_prefix *v;

	v = grow_array(set->prefixes, &set->cap, set->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	set->prefixes = v;
	v[set->n++] = *p;
	return 0;
}

/* ---- files ------------------------------------------------------------ */

/*
 * Read a whole regular file of at most @max bytes into a NUL-terminated
 * buffer. Returns 0, -EISDIR / -EINVAL for a directory / another kind of
 * file, -EFBIG when too large, or the errno of open/read.
 */
static int read_whole_file(const char *path, size_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap;
	char *buf = NULL, *nbuf;
	struct stat st;
	ssize_t n;
	int fd, err = 0;

	/* O_NONBLOCK: opening a FIFO must not hang before we can refuse it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if ((unsigned long long)st.st_size > max) {
		err = -EFBIG;
		goto out;
	}

	/* The size is a hint only: the file may change, or be a /proc file. */
	cap = (size_t)st.st_size + 1;
	if (cap < 4096)
		cap = 4096;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max + 1) {
				err = -EFBIG;
				goto out;
			}
			nbuf = realloc(buf, cap * 2);
			if (!nbuf) {
				err = -ENOMEM;
				goto out;
			}
			buf = nbuf;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		err = -EFBIG;
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

static const char *read_error_text(int err, char *buf, size_t len)
{
	if (err == -EISDIR || err == -EINVAL)
		return "not a regular file";
	if (err == -EFBIG) {
		snprintf(buf, len, "file too large (the limit is %u MiB)", RULES_MAX_FILE_SIZE_MIB);
		return buf;
	}
	return strerror(-err);
}

/* Refuse binary content up front: one clear error, not one per line. */
static bool text_has_nul(struct parser *ps, const char *file, const char *text, size_t len)
{
	const char *nul = memchr(text, '\0', len), *bol = text, *q;
	int line = 1;

	if (!nul)
		return false;
	for (q = text; q < nul; q++) {
		if (*q == '\n') {
			line++;
			bol = q + 1;
		}
	}
	perr(ps, file, line, (int)(nul - bol) + 1, "NUL byte: this is a binary file, not text");
	return true;
}

/* Editors on some systems start a UTF-8 file with a byte order mark. */
static void skip_bom(const char **text, size_t *len)
{
	if (*len >= 3 && !memcmp(*text, "\xef\xbb\xbf", 3)) {
		*text += 3;
		*len -= 3;
	}
}

static bool is_ctrl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* ---- set names -------------------------------------------------------- */

static bool set_name_valid(const char *s, size_t len)
{
	size_t i;

	if (!len || len > RULES_SET_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || (i && (c == '-' || c == '.'));

		if (!ok)
			return false;
	}
	return true;
}

static size_t name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static int set_find(const struct parser *ps, const char *name, size_t len)
{
	size_t i;

	if (!ps->hcap)
		return -1;
	for (i = name_hash(name, len) & (ps->hcap - 1); ps->set_hash[i];
	     i = (i + 1) & (ps->hcap - 1)) {
		const char *n = ps->rs->sets[ps->set_hash[i] - 1].name;

		if (strlen(n) == len && !memcmp(n, name, len))
			return ps->set_hash[i] - 1;
	}
	return -1;
}

static void set_hash_put(int *tab, size_t cap, const char *name, int idx)
{
	size_t i = name_hash(name, strlen(name)) & (cap - 1);

	while (tab[i])
		i = (i + 1) & (cap - 1);
	tab[i] = idx + 1;
}

static int set_index_add(struct parser *ps, int idx)
{
	/* Keep the load under one half so probes stay short. */
	if ((size_t)(idx + 1) * 2 > ps->hcap) {
		size_t ncap = ps->hcap ? ps->hcap * 2 : 64, i;
		int *tab = calloc(ncap, sizeof(*tab));

		if (!tab)
			return -ENOMEM;
		for (i = 0; i < ps->hcap; i++)
			if (ps->set_hash[i])
				set_hash_put(tab, ncap, ps->rs->sets[ps->set_hash[i] - 1].name,
					     ps->set_hash[i] - 1);
		free(ps->set_hash);
		ps->set_hash = tab;
		ps->hcap = ncap;
	}
	set_hash_put(ps->set_hash, ps->hcap, ps->rs->sets[idx].name, idx);
	return 0;
}

/* ---- set files -------------------------------------------------------- */

/* One prefix a line, `#` comments, blank lines; errors name the set file. */
static void parse_set_text(struct parser *ps, size_t si, const char *path, const char *text,
			   size_t len)
{
	const char *p = text, *end = text + len;
	int line = 0;

	if (text_has_nul(ps, path, text, len))
		return;
	skip_bom(&text, &len);
	p = text;
	end = text + len;

	while (p < end && !ps->stopped && !ps->nomem) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;
		const char *w, *we, *q;
		struct rule_prefix pfx;
		char msg[256];
		enum pfx_err pe;

		line++;
		if (eol - p > RULES_MAX_LINE) {
			perr(ps, path, line, 1, "line longer than %d bytes", RULES_MAX_LINE);
			p = next;
			continue;
		}
		q = memchr(p, '#', (size_t)(eol - p));
		if (q)
			eol = q;
		if (eol > p && eol[-1] == '\r')
			eol--;

		for (w = p; w < eol && (*w == ' ' || *w == '\t'); w++)
			;
		for (we = w; we < eol && *we != ' ' && *we != '\t' && !is_ctrl(*we); we++)
			;
		for (q = we; q < eol && (*q == ' ' || *q == '\t'); q++)
			;
		if (q < eol && is_ctrl(*q)) {
			perr(ps, path, line, (int)(q - p) + 1,
			     "unexpected control character 0x%02x; is this a text file?",
			     (unsigned char)*q);
		} else if (q < eol) {
			struct tok t = { .s = q, .len = (int)(eol - q) };

			perr(ps, path, line, (int)(q - p) + 1,
			     "expected one prefix per line, found " TOK_FMT " after it",
			     TOK_ARGS(&t));
		} else if (w < we) {
			pe = parse_prefix(w, (size_t)(we - w), &pfx, msg, sizeof(msg));
			if (pe == PFX_NOT_ADDR) {
				struct tok t = { .s = w, .len = (int)(we - w) };

				perr(ps, path, line, (int)(w - p) + 1,
				     "expected an IPv4 or IPv6 prefix, found " TOK_FMT,
				     TOK_ARGS(&t));
			} else if (pe) {
				perr(ps, path, line, (int)(w - p) + 1, "%s", msg);
			} else if (set_add_prefix(ps->rs, si, &pfx)) {
				nomem(ps);
			}
		}
		p = next;
	}
}

static void load_set_file(struct parser *ps, size_t si, const struct tok *pt)
{
	char *path = NULL, *text = NULL, ebuf[64];
	size_t len;
	int err;

	if (pt->s[0] == '/' || !ps->dir)
		err = asprintf(&path, "%.*s", pt->len, pt->s);
	else
		err = asprintf(&path, "%s%s%.*s", ps->dir, strcmp(ps->dir, "/") ? "/" : "", pt->len,
			       pt->s);
	if (err < 0) {
		nomem(ps);
		return;
	}
	err = read_whole_file(path, RULES_MAX_FILE_SIZE, &text, &len);
	if (err)
		perr(ps, ps->file, pt->line, pt->col, "cannot read set file '%s': %s", path,
		     read_error_text(err, ebuf, sizeof(ebuf)));
	else
		parse_set_text(ps, si, path, text, len);
	free(text);
	free(path);
}

/* ---- the lexer -------------------------------------------------------- */

static int push_tok(struct parser *ps, enum tok_kind kind, const char *s, int len, int line,
		    int col)
{
	struct tok *v = grow_array(ps->toks, &ps->tcap, ps->ntoks + 1, sizeof(*v));

	if (!v) {
		nomem(ps);
		return -ENOMEM;
	}
	ps->toks = v;
	v[ps->ntoks++] = (struct tok){ .kind = kind, .s = s, .len = len, .line = line, .col = col };
	return 0;
}

/*
 * Append the tokens of the next line to ps->toks. Returns false at the end
 * of the text. Sets *bad when the line cannot be a statement (too long,
 * control characters); the error is already reported.
 */
static bool lex_line(struct parser *ps, bool *bad)
{
	struct lexer *lx = &ps->lx;
	const char *start = lx->p, *nl, *eol, *q;
	int line;

	if (lx->p >= lx->end)
		return false;
	nl = memchr(start, '\n', (size_t)(lx->end - start));
	eol = nl ? nl : lx->end;
	lx->p = nl ? nl + 1 : lx->end;
	line = ++lx->line;

	if (eol - start > RULES_MAX_LINE) {
		perr(ps, ps->file, line, 1, "line longer than %d bytes", RULES_MAX_LINE);
		*bad = true;
		return true;
	}
	if (eol > start && eol[-1] == '\r')
		eol--;

	for (q = start; q < eol;) {
		int col = (int)(q - start) + 1;
		const char *w = q;
		enum tok_kind kind;

		switch (*q) {
		case '#':
			return true;
		case ' ':
		case '\t':
			q++;
			continue;
		case '{':
			kind = TOK_LBRACE;
			break;
		case '}':
			kind = TOK_RBRACE;
			break;
		case ',':
			kind = TOK_COMMA;
			break;
		default:
			kind = TOK_WORD;
		}
		if (kind != TOK_WORD) {
			if (push_tok(ps, kind, q, 1, line, col))
				*bad = true;
			q++;
			continue;
		}
		if (is_ctrl(*q)) {
			perr(ps, ps->file, line, col,
			     "unexpected control character 0x%02x; is this a text file?",
			     (unsigned char)*q);
			*bad = true;
			return true;
		}
		while (q < eol && !strchr(" \t#{},", *q) && !is_ctrl(*q))
			q++;
		if (push_tok(ps, TOK_WORD, w, (int)(q - w), line, col))
			*bad = true;
	}
	return true;
}

/* The first word of the next line, to see whether an open '{' ran away. */
static bool next_line_starts_statement(const struct parser *ps)
{
	const char *q = ps->lx.p, *end = ps->lx.end, *w;
	size_t n;

	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	for (w = q; q < end && *q >= 'a' && *q <= 'z'; q++)
		;
	n = (size_t)(q - w);
	if (q < end && !strchr(" \t\r\n#", *q))
		return false;
	return (n == 4 && !memcmp(w, "nacl", 4)) || (n == 2 && !memcmp(w, "sg", 2)) ||
	       (n == 3 && !memcmp(w, "set", 3));
}

/*
 * Gather the next statement: one line, or several when a `set NAME {`
 * leaves its brace open. Returns 0 at the end of the text, 1 when a
 * statement is ready, 2 when the statement is to be skipped.
 */
static int next_statement(struct parser *ps)
{
	bool bad = false;
	int depth = 0;
	size_t i = 0;
	const struct tok *last;

	ps->ntoks = 0;
	ps->pos = 0;
	ps->stmt_bad = false;
	if (!lex_line(ps, &bad))
		return 0;
	for (;;) {
		for (; i < ps->ntoks; i++) {
			if (ps->toks[i].kind == TOK_LBRACE)
				depth++;
			else if (ps->toks[i].kind == TOK_RBRACE)
				depth--;
		}
		if (bad || depth <= 0 || !ps->ntoks || !tok_is(&ps->toks[0], "set"))
			break;
		/* A brace left open at the next statement is reported by the
		 * set parser; do not swallow the rest of the file. */
		if (ps->lx.p >= ps->lx.end || next_line_starts_statement(ps))
			break;
		lex_line(ps, &bad);
	}
	if (bad)
		return 2;
	if (!ps->ntoks)
		return 2;
	last = &ps->toks[ps->ntoks - 1];
	if (push_tok(ps, TOK_EOL, last->s + last->len, 0, last->line, last->col + last->len))
		return 2;
	return 1;
}

static const struct tok *peek(const struct parser *ps)
{
	return &ps->toks[ps->pos];
}

static const struct tok *next_tok(struct parser *ps)
{
	const struct tok *t = &ps->toks[ps->pos];

	if (t->kind != TOK_EOL)
		ps->pos++;
	return t;
}

/* "expected WHAT after 'PREV', found 'T'" at T. */
static void expect_err(struct parser *ps, const struct tok *t, const struct tok *prev,
		       const char *what)
{
	if (t->kind == TOK_EOL)
		perr(ps, ps->file, t->line, t->col,
		     "expected %s after " TOK_FMT ", found end of line", what, TOK_ARGS(prev));
	else
		perr(ps, ps->file, t->line, t->col, "expected %s after " TOK_FMT ", found " TOK_FMT,
		     what, TOK_ARGS(prev), TOK_ARGS(t));
}

/* Anything left on the line after a complete statement is an error. */
static void expect_end(struct parser *ps)
{
	const struct tok *t = peek(ps);

	if (t->kind != TOK_EOL)
		perr(ps, ps->file, t->line, t->col, "unexpected " TOK_FMT ": expected end of line",
		     TOK_ARGS(t));
}

/* ---- rules ------------------------------------------------------------ */

static int parse_dir(struct parser *ps, const struct tok *kw, enum rule_dir *dir)
{
	const struct tok *t = next_tok(ps);

	if (tok_is(t, "in"))
		*dir = RULE_DIR_IN;
	else if (tok_is(t, "out"))
		*dir = RULE_DIR_OUT;
	else {
		expect_err(ps, t, kw, "'in' or 'out'");
		return -EINVAL;
	}
	return 0;
}

static int parse_proto(struct parser *ps, const struct tok *prev, int *proto)
{
	static const struct {
		const char *name;
		int proto;
	} names[] = { { "all", RULE_PROTO_ALL },
		      { "tcp", 6 },
		      { "udp", 17 },
		      { "icmp", 1 },
		      { "icmpv6", 58 } };
	const struct tok *t = next_tok(ps);
	unsigned long v = 0;
	size_t i;
	int err;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (tok_is(t, names[i].name)) {
			*proto = names[i].proto;
			return 0;
		}
	}
	err = t->kind == TOK_WORD ? parse_uint(t->s, (size_t)t->len, 255, &v) : -EINVAL;
	if (err == -ERANGE) {
		perr(ps, ps->file, t->line, t->col,
		     "protocol " TOK_FMT " is out of range: expected 0-255", TOK_ARGS(t));
		return -EINVAL;
	}
	if (err) {
		expect_err(ps, t, prev, "a protocol (all, tcp, udp, icmp, icmpv6 or 0-255)");
		return -EINVAL;
	}
	*proto = (int)v;
	return 0;
}

static bool proto_has_ports(int proto)
{
	return proto == 6 || proto == 17;
}

static int parse_addr(struct parser *ps, struct rule *r, const struct tok *kw, bool dst,
		      struct set_ref *ref)
{
	const struct tok *t = next_tok(ps);
	struct rule_addr *a = dst ? &r->dst : &r->src;
	char msg[256];
	enum pfx_err pe;

	if (t->kind == TOK_WORD && t->s[0] == '@') {
		if (!set_name_valid(t->s + 1, (size_t)t->len - 1)) {
			perr(ps, ps->file, t->line, t->col,
			     "expected a set name after '@' (letters, digits, '_', '-', '.'; at most %d), found " TOK_FMT,
			     RULES_SET_NAME_MAX, TOK_ARGS(t));
			return 0;
		}
		a->kind = RULE_ADDR_SET;
		a->set = -1;
		*ref = (struct set_ref){ .dst = dst,
					 .name = t->s + 1,
					 .len = t->len - 1,
					 .line = t->line,
					 .col = t->col };
		return 0;
	}
	if (t->kind != TOK_WORD) {
		expect_err(ps, t, kw, "a CIDR or @SET");
		return -EINVAL;
	}
	pe = parse_prefix(t->s, (size_t)t->len, &a->prefix, msg, sizeof(msg));
	if (pe == PFX_NOT_ADDR) {
		expect_err(ps, t, kw, "a CIDR or @SET");
		return -EINVAL;
	}
	/* A bad length or host bits is a wrong value, not a wrong shape: say
	 * so and go on checking the rest of the rule. */
	if (pe) {
		perr(ps, ps->file, t->line, t->col, "%s", msg);
		return 0;
	}
	a->kind = RULE_ADDR_PREFIX;
	if (!r->family)
		r->family = a->prefix.family;
	else if (r->family != a->prefix.family) {
		perr(ps, ps->file, t->line, t->col,
		     "mixed address families in one rule: %s is IPv%d but %s is IPv%d",
		     dst ? "src" : "dst", r->family, dst ? "dst" : "src", a->prefix.family);
	}
	return 0;
}

static int parse_port_range(struct parser *ps, const struct tok *kw, struct rule_range *rg)
{
	const struct tok *t = next_tok(ps);
	unsigned long lo = 0, hi = 0;
	const char *dash;
	size_t llen;
	int e1, e2;

	if (t->kind != TOK_WORD) {
		expect_err(ps, t, kw, "a port or range (e.g. 443 or 1024-65535)");
		return -EINVAL;
	}
	dash = memchr(t->s, '-', (size_t)t->len);
	llen = dash ? (size_t)(dash - t->s) : (size_t)t->len;
	e1 = parse_uint(t->s, llen, 65535, &lo);
	e2 = dash ? parse_uint(dash + 1, (size_t)t->len - llen - 1, 65535, &hi) : e1;
	if (!dash)
		hi = lo;
	if (e1 == -EINVAL || e2 == -EINVAL) {
		expect_err(ps, t, kw, "a port or range (e.g. 443 or 1024-65535)");
		return -EINVAL;
	}
	if (e1 || e2) {
		perr(ps, ps->file, t->line, t->col,
		     "port " TOK_FMT " is out of range: expected 0-65535", TOK_ARGS(t));
		return 0;
	}
	if (lo > hi) {
		perr(ps, ps->file, t->line, t->col, "port range %lu-%lu: start exceeds end", lo,
		     hi);
		return 0;
	}
	*rg = (struct rule_range){ .set = true, .lo = (uint16_t)lo, .hi = (uint16_t)hi };
	return 0;
}

static int parse_icmp(struct parser *ps, const struct tok *kw, struct rule *r)
{
	const struct tok *t = next_tok(ps);
	unsigned long type = 0, code = 0;
	const char *slash;
	size_t tlen;
	int e1, e2 = 0;

	if (t->kind != TOK_WORD) {
		expect_err(ps, t, kw, "an ICMP TYPE or TYPE/CODE (0-255)");
		return -EINVAL;
	}
	slash = memchr(t->s, '/', (size_t)t->len);
	tlen = slash ? (size_t)(slash - t->s) : (size_t)t->len;
	e1 = parse_uint(t->s, tlen, 255, &type);
	if (slash)
		e2 = parse_uint(slash + 1, (size_t)t->len - tlen - 1, 255, &code);
	if (e1 == -EINVAL || e2 == -EINVAL) {
		expect_err(ps, t, kw, "an ICMP TYPE or TYPE/CODE (0-255)");
		return -EINVAL;
	}
	if (e1 || e2) {
		perr(ps, ps->file, t->line, t->col,
		     "ICMP %s in " TOK_FMT " is out of range: expected 0-255", e1 ? "type" : "code",
		     TOK_ARGS(t));
		return 0;
	}
	r->has_icmp = true;
	r->icmp_type = (int)type;
	r->icmp_code = slash ? (int)code : -1;
	return 0;
}

/* The protocol-dependent MATCHes, checked once the whole rule is read. */
static void check_match_protos(struct parser *ps, const struct rule *r, const struct tok **seen)
{
	char proto[8];

	rule_proto_name(r->proto, proto, sizeof(proto));
	if (!proto_has_ports(r->proto)) {
		if (seen[M_SPORT])
			perr(ps, ps->file, seen[M_SPORT]->line, seen[M_SPORT]->col,
			     "'sport' is only for tcp or udp rules (this rule's protocol is %s)",
			     proto);
		if (seen[M_DPORT])
			perr(ps, ps->file, seen[M_DPORT]->line, seen[M_DPORT]->col,
			     "'dport' is only for tcp or udp rules (this rule's protocol is %s)",
			     proto);
	}
	if (seen[M_ICMP] && r->proto != 1 && r->proto != 58)
		perr(ps, ps->file, seen[M_ICMP]->line, seen[M_ICMP]->col,
		     "'icmp' is only for icmp or icmpv6 rules (this rule's protocol is %s)", proto);
	if (seen[M_ESTABLISHED] && r->proto != 6)
		perr(ps, ps->file, seen[M_ESTABLISHED]->line, seen[M_ESTABLISHED]->col,
		     "'established' is only for tcp rules (this rule's protocol is %s)", proto);
}

static int add_ref(struct parser *ps, struct set_ref *ref, size_t rule)
{
	struct set_ref *v = grow_array(ps->refs, &ps->rcap, ps->nrefs + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	ps->refs = v;
	ref->rule = rule;
	v[ps->nrefs++] = *ref;
	return 0;
}

/* MATCH… then the rule goes in, unless the statement had an error. */
static void parse_matches(struct parser *ps, struct rule *r)
{
	const struct tok *seen[M_COUNT] = { NULL }, *t;
	struct set_ref refs[2] = { { 0 } };
	struct ruleset *rs = ps->rs;
	struct rule *v;
	int id, err = 0;

	while (!err && (t = next_tok(ps))->kind != TOK_EOL) {
		for (id = 0; id < M_COUNT; id++)
			if (tok_is(t, match_names[id]))
				break;
		if (id == M_COUNT) {
			perr(ps, ps->file, t->line, t->col,
			     "unknown match " TOK_FMT
			     ": expected src, dst, sport, dport, icmp or established",
			     TOK_ARGS(t));
			return;
		}
		if (seen[id]) {
			perr(ps, ps->file, t->line, t->col,
			     "'%s' appears twice in one rule (first at column %d)", match_names[id],
			     seen[id]->col);
			return;
		}
		seen[id] = t;
		switch (id) {
		case M_SRC:
		case M_DST:
			err = parse_addr(ps, r, t, id == M_DST, &refs[id]);
			break;
		case M_SPORT:
			err = parse_port_range(ps, t, &r->sport);
			break;
		case M_DPORT:
			err = parse_port_range(ps, t, &r->dport);
			break;
		case M_ICMP:
			err = parse_icmp(ps, t, r);
			break;
		case M_ESTABLISHED:
			r->established = true;
			break;
		}
	}
	if (err)
		return;
	check_match_protos(ps, r, seen);
	if (ps->stmt_bad)
		return;

	v = grow_array(rs->rules, &rs->cap, rs->nrules + 1, sizeof(*v));
	if (!v) {
		nomem(ps);
		return;
	}
	rs->rules = v;
	for (id = M_SRC; id <= M_DST; id++)
		if (refs[id].name && add_ref(ps, &refs[id], rs->nrules)) {
			nomem(ps);
			return;
		}
	v[rs->nrules++] = *r;
	rs->stage_on[r->stage] = true;
}

static void rule_start(struct parser *ps, struct rule *r, enum rule_stage stage,
		       const struct tok *kw)
{
	memset(r, 0, sizeof(*r));
	r->stage = stage;
	r->icmp_code = -1;
	r->loc = (struct rule_loc){ .file = ps->file, .line = kw->line, .col = kw->col };
}

/* nacl DIR NUMBER ACTION PROTO [MATCH…] */
static void parse_nacl(struct parser *ps, const struct tok *kw)
{
	const struct tok *t, *prev;
	unsigned long num = 0;
	struct rule r;
	int err, *first;

	rule_start(ps, &r, RULE_STAGE_NACL, kw);
	prev = peek(ps);
	if (parse_dir(ps, kw, &r.dir))
		return;

	t = next_tok(ps);
	err = t->kind == TOK_WORD ? parse_uint(t->s, (size_t)t->len, RULE_NACL_NUMBER_MAX, &num)
				  : -EINVAL;
	if (err == -EINVAL) {
		expect_err(ps, t, prev, "a rule number (1-32766)");
		return;
	}
	if (err || num < RULE_NACL_NUMBER_MIN) {
		perr(ps, ps->file, t->line, t->col,
		     "rule number " TOK_FMT " is out of range: expected %d-%d", TOK_ARGS(t),
		     RULE_NACL_NUMBER_MIN, RULE_NACL_NUMBER_MAX);
	} else {
		if (!ps->nacl_line[r.dir]) {
			ps->nacl_line[r.dir] = calloc(RULE_NACL_NUMBER_MAX + 1, sizeof(int));
			if (!ps->nacl_line[r.dir]) {
				nomem(ps);
				return;
			}
		}
		first = &ps->nacl_line[r.dir][num];
		if (*first)
			perr(ps, ps->file, t->line, t->col,
			     "nacl %s rule %lu is already defined at line %d", rule_dir_name(r.dir),
			     num, *first);
		else
			*first = t->line;
		r.number = (int)num;
	}

	prev = t;
	t = next_tok(ps);
	if (tok_is(t, "allow")) {
		r.action = RULE_ALLOW;
	} else if (tok_is(t, "deny")) {
		r.action = RULE_DENY;
	} else {
		expect_err(ps, t, prev, "'allow' or 'deny'");
		return;
	}
	if (parse_proto(ps, t, &r.proto))
		return;
	parse_matches(ps, &r);
}

/* sg DIR allow PROTO [MATCH…] */
static void parse_sg(struct parser *ps, const struct tok *kw)
{
	const struct tok *t, *prev;
	unsigned long num = 0;
	struct rule r;

	rule_start(ps, &r, RULE_STAGE_SG, kw);
	prev = peek(ps);
	if (parse_dir(ps, kw, &r.dir))
		return;

	t = next_tok(ps);
	if (t->kind == TOK_WORD && parse_uint(t->s, (size_t)t->len, ~0ul, &num) != -EINVAL) {
		/* A NACL habit; say why and read on. */
		perr(ps, ps->file, t->line, t->col,
		     "SG rules have no number (they are a union, not an ordered list); remove " TOK_FMT,
		     TOK_ARGS(t));
		prev = t;
		t = next_tok(ps);
	}
	if (tok_is(t, "deny")) {
		perr(ps, ps->file, t->line, t->col, "SG rules allow only; use a nacl rule to deny");
		return;
	}
	if (!tok_is(t, "allow")) {
		expect_err(ps, t, prev, "'allow'");
		return;
	}
	r.action = RULE_ALLOW;
	if (parse_proto(ps, t, &r.proto))
		return;
	/* The number, the order among the direction's SG rules, is given
	 * once the file is read (number_sg_rules). */
	parse_matches(ps, &r);
}

/* ---- sets and settings ------------------------------------------------ */

static bool setting_once(struct parser *ps, enum setting_id id, const struct tok *kw,
			 const char *what)
{
	if (ps->setting_line[id]) {
		perr(ps, ps->file, kw->line, kw->col, "'set %s' is already given at line %d", what,
		     ps->setting_line[id]);
		return false;
	}
	ps->setting_line[id] = kw->line;
	return true;
}

/* A number in [lo, hi] for a setting; "NAME must be LO-HI UNIT, found X". */
static int setting_number(struct parser *ps, const struct tok *prev, const char *what,
			  unsigned long lo, unsigned long hi, const char *unit, uint32_t *out)
{
	const struct tok *t = next_tok(ps);
	unsigned long v = 0;
	int err;

	err = t->kind == TOK_WORD ? parse_uint(t->s, (size_t)t->len, hi, &v) : -EINVAL;
	if (err == -EINVAL) {
		expect_err(ps, t, prev, "a number");
		return -EINVAL;
	}
	if (err || v < lo) {
		perr(ps, ps->file, t->line, t->col, "%s must be %lu-%lu%s, found " TOK_FMT, what,
		     lo, hi, unit, TOK_ARGS(t));
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static void parse_conntrack(struct parser *ps, const struct tok *kw, const struct tok *ct)
{
	/* The low ends follow the clouds': an established TCP flow gets at
	 * least a minute. */
	static const struct {
		const char *name;
		enum setting_id id;
		unsigned long lo;
	} timeouts[] = {
		{ "tcp-established", SETTING_TO_TCP_EST, 60 },
		{ "udp", SETTING_TO_UDP, 1 },
		{ "udp-stream", SETTING_TO_UDP_STREAM, 1 },
		{ "icmp", SETTING_TO_ICMP, 1 },
	};
	struct rule_settings *s = &ps->rs->settings;
	uint32_t *fields[] = { &s->ct_tcp_established, &s->ct_udp, &s->ct_udp_stream, &s->ct_icmp };
	const struct tok *t = next_tok(ps), *k;
	char what[64];
	uint32_t v;
	size_t i;

	if (tok_is(t, "max")) {
		if (setting_number(ps, t, "conntrack max", 1, RULES_CT_MAX_LIMIT, "", &v))
			return;
		if (setting_once(ps, SETTING_CT_MAX, kw, "conntrack max"))
			s->ct_max = v;
		expect_end(ps);
		return;
	}
	if (!tok_is(t, "timeout")) {
		expect_err(ps, t, ct, "'max' or 'timeout'");
		return;
	}
	k = next_tok(ps);
	for (i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
		if (tok_is(k, timeouts[i].name))
			break;
	if (i == sizeof(timeouts) / sizeof(timeouts[0])) {
		expect_err(ps, k, t, "tcp-established, udp, udp-stream or icmp");
		return;
	}
	snprintf(what, sizeof(what), "conntrack timeout %s", timeouts[i].name);
	if (setting_number(ps, k, what, timeouts[i].lo, RULES_TIMEOUT_MAX, " seconds", &v))
		return;
	if (setting_once(ps, timeouts[i].id, kw, what))
		*fields[i] = v;
	expect_end(ps);
}

static void set_ephemeral(struct rule_settings *s, enum rule_ephemeral e)
{
	s->ephemeral = e;
	switch (e) {
	case RULE_EPH_LINUX:
		s->ephemeral_lo = 32768;
		s->ephemeral_hi = 60999;
		break;
	case RULE_EPH_WINDOWS:
	case RULE_EPH_MACOS:
		s->ephemeral_lo = 49152;
		s->ephemeral_hi = 65535;
		break;
	case RULE_EPH_ANY:
	default:
		s->ephemeral_lo = 1024;
		s->ephemeral_hi = 65535;
		break;
	}
}

/* set NAME { P, … }  |  set NAME file PATH */
static void parse_set_def(struct parser *ps, const struct tok *kw, const struct tok *nt)
{
	struct ruleset *rs = ps->rs;
	const struct tok *t, *open, *prev;
	struct rule_set *sets;
	struct rule_prefix pfx;
	char msg[256];
	enum pfx_err pe;
	size_t si;
	int first;

	if (!set_name_valid(nt->s, (size_t)nt->len)) {
		perr(ps, ps->file, nt->line, nt->col,
		     "expected a set name (letters, digits, '_', '-', '.'; at most %d) after 'set', found " TOK_FMT,
		     RULES_SET_NAME_MAX, TOK_ARGS(nt));
		return;
	}
	sets = grow_array(rs->sets, &rs->sets_cap, rs->nsets + 1, sizeof(*sets));
	if (!sets) {
		nomem(ps);
		return;
	}
	rs->sets = sets;
	si = rs->nsets;
	memset(&sets[si], 0, sizeof(sets[si]));
	sets[si].name = strndup(nt->s, (size_t)nt->len);
	if (!sets[si].name) {
		nomem(ps);
		return;
	}
	sets[si].loc = (struct rule_loc){ .file = ps->file, .line = kw->line, .col = kw->col };
	rs->nsets++;

	/* A second definition is still read, so its own errors show too. */
	first = set_find(ps, nt->s, (size_t)nt->len);
	if (first >= 0)
		perr(ps, ps->file, nt->line, nt->col, "set '%s' is already defined at line %d",
		     sets[si].name, rs->sets[first].loc.line);
	else if (set_index_add(ps, (int)si))
		nomem(ps);

	t = next_tok(ps);
	if (tok_is(t, "file")) {
		const struct tok *pt = next_tok(ps);

		if (pt->kind != TOK_WORD) {
			expect_err(ps, pt, t, "a file name");
			return;
		}
		load_set_file(ps, si, pt);
		expect_end(ps);
		return;
	}
	if (t->kind != TOK_LBRACE) {
		expect_err(ps, t, nt, "'{' or 'file'");
		return;
	}
	open = t;
	prev = t;
	for (;;) {
		t = next_tok(ps);
		if (t->kind == TOK_RBRACE)
			break;
		if (t->kind == TOK_EOL) {
			perr(ps, ps->file, t->line, t->col,
			     "missing '}': set '%s' opened at line %d, column %d is not closed",
			     sets[si].name, open->line, open->col);
			return;
		}
		if (t->kind != TOK_WORD) {
			expect_err(ps, t, prev, "an IPv4 or IPv6 prefix");
			return;
		}
		pe = parse_prefix(t->s, (size_t)t->len, &pfx, msg, sizeof(msg));
		if (pe == PFX_NOT_ADDR) {
			expect_err(ps, t, prev, "an IPv4 or IPv6 prefix");
			return;
		}
		if (pe)
			perr(ps, ps->file, t->line, t->col, "%s", msg);
		else if (set_add_prefix(rs, si, &pfx))
			nomem(ps);
		/* A prefix is followed by ',' or '}'; a trailing comma is fine. */
		prev = t;
		t = peek(ps);
		if (t->kind == TOK_COMMA) {
			prev = next_tok(ps);
		} else if (t->kind != TOK_RBRACE) {
			if (t->kind == TOK_EOL)
				continue; /* reported as a missing '}' */
			expect_err(ps, t, prev, "',' or '}'");
			return;
		}
	}
	expect_end(ps);
}

static void parse_set(struct parser *ps, const struct tok *kw)
{
	struct rule_settings *s = &ps->rs->settings;
	const struct tok *t = next_tok(ps), *v;

	if (tok_is(t, "conntrack")) {
		parse_conntrack(ps, kw, t);
		return;
	}
	if (tok_is(t, "pass-ndp")) {
		v = next_tok(ps);
		if (!tok_is(v, "on") && !tok_is(v, "off")) {
			expect_err(ps, v, t, "'on' or 'off'");
			return;
		}
		if (setting_once(ps, SETTING_PASS_NDP, kw, "pass-ndp"))
			s->pass_ndp = tok_is(v, "on");
		expect_end(ps);
		return;
	}
	if (tok_is(t, "ephemeral")) {
		static const char *const names[] = { "any", "linux", "windows", "macos" };
		static const enum rule_ephemeral vals[] = { RULE_EPH_ANY, RULE_EPH_LINUX,
							    RULE_EPH_WINDOWS, RULE_EPH_MACOS };
		size_t i;

		v = next_tok(ps);
		for (i = 0; i < 4; i++)
			if (tok_is(v, names[i]))
				break;
		if (i == 4) {
			expect_err(ps, v, t, "linux, windows, macos or any");
			return;
		}
		if (setting_once(ps, SETTING_EPHEMERAL, kw, "ephemeral"))
			set_ephemeral(s, vals[i]);
		expect_end(ps);
		return;
	}
	if (t->kind != TOK_WORD) {
		expect_err(ps, t, kw, "a set name, 'conntrack', 'pass-ndp' or 'ephemeral'");
		return;
	}
	parse_set_def(ps, kw, t);
}

/* ---- the whole file --------------------------------------------------- */

static void resolve_refs(struct parser *ps)
{
	size_t i;

	for (i = 0; i < ps->nrefs; i++) {
		const struct set_ref *ref = &ps->refs[i];
		struct rule *r = &ps->rs->rules[ref->rule];
		int si = set_find(ps, ref->name, (size_t)ref->len);

		if (si < 0) {
			perr(ps, ps->file, ref->line, ref->col,
			     "unknown set '@%.*s': expected a 'set %.*s' statement in the file",
			     ref->len, ref->name, ref->len, ref->name);
			continue;
		}
		if (ref->dst)
			r->dst.set = si;
		else
			r->src.set = si;
	}
}

static void number_sg_rules(struct ruleset *rs)
{
	int n[2] = { 0, 0 };
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		if (rs->rules[i].stage == RULE_STAGE_SG)
			rs->rules[i].number = ++n[rs->rules[i].dir];
}

static int intern_file(struct ruleset *rs, const char *name, const char **out)
{
	char **v;
	size_t i;

	for (i = 0; i < rs->nfiles; i++) {
		if (!strcmp(rs->files[i], name)) {
			*out = rs->files[i];
			return 0;
		}
	}
	v = realloc(rs->files, (rs->nfiles + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	rs->files = v;
	v[rs->nfiles] = strdup(name);
	if (!v[rs->nfiles])
		return -ENOMEM;
	*out = v[rs->nfiles++];
	return 0;
}

static int parse_buffer(const char *name, const char *text, size_t len, struct ruleset *rs,
			struct diags *d)
{
	struct parser ps = { .rs = rs, .d = d };
	const char *slash;
	int ret, err = 0;

	if (!name)
		name = "<input>";
	if (intern_file(rs, name, &ps.file))
		goto nomem;
	slash = strrchr(name, '/');
	if (slash) {
		ps.dir = slash == name ? strdup("/") : strndup(name, (size_t)(slash - name));
		if (!ps.dir)
			goto nomem;
	}
	skip_bom(&text, &len);
	ps.lx = (struct lexer){ .p = text, .end = text + len };

	if (len > RULES_MAX_FILE_SIZE)
		perr(&ps, ps.file, 0, 0, "file too large (the limit is %u MiB)",
		     RULES_MAX_FILE_SIZE_MIB);
	else if (!text_has_nul(&ps, ps.file, text, len))
		while (!ps.stopped && !ps.nomem && (ret = next_statement(&ps))) {
			const struct tok *kw;

			if (ret != 1)
				continue;
			kw = next_tok(&ps);
			if (tok_is(kw, "nacl"))
				parse_nacl(&ps, kw);
			else if (tok_is(kw, "sg"))
				parse_sg(&ps, kw);
			else if (tok_is(kw, "set"))
				parse_set(&ps, kw);
			else
				perr(&ps, ps.file, kw->line, kw->col,
				     "unknown statement " TOK_FMT
				     ": expected 'nacl', 'sg' or 'set'",
				     TOK_ARGS(kw));
		}
	if (!ps.stopped && !ps.nomem)
		resolve_refs(&ps);
	number_sg_rules(rs);

	if (ps.nomem)
		err = -ENOMEM;
	else if (ps.errors)
		err = -EINVAL;
	free(ps.dir);
	free(ps.toks);
	free(ps.refs);
	free(ps.nacl_line[0]);
	free(ps.nacl_line[1]);
	free(ps.set_hash);
	return err;
nomem:
	diags_add(d, DIAG_ERROR, name, 0, 0, "out of memory");
	return -ENOMEM;
}

/* ---- the API ---------------------------------------------------------- */

void rule_settings_default(struct rule_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->ct_max = 262144;
	s->ct_tcp_established = 432000;
	s->ct_udp = 30;
	s->ct_udp_stream = 180;
	s->ct_icmp = 30;
	s->ct_other = 600;
	s->pass_ndp = true;
	set_ephemeral(s, RULE_EPH_ANY);
}

void ruleset_init(struct ruleset *rs)
{
	memset(rs, 0, sizeof(*rs));
	rule_settings_default(&rs->settings);
}

void ruleset_free(struct ruleset *rs)
{
	size_t i;

	for (i = 0; i < rs->nsets; i++) {
		free(rs->sets[i].name);
		free(rs->sets[i].prefixes);
	}
	free(rs->sets);
	free(rs->rules);
	for (i = 0; i < rs->nfiles; i++)
		free(rs->files[i]);
	free(rs->files);
	ruleset_init(rs);
}

int rules_parse_text(const char *name, const char *text, size_t len, struct ruleset *rs,
		     struct diags *d)
{
	int err;

	ruleset_init(rs);
	err = parse_buffer(name, text, len, rs, d);
	if (err)
		ruleset_free(rs);
	return err;
}

int rules_parse_file(const char *path, struct ruleset *rs, struct diags *d)
{
	char *text = NULL, ebuf[64];
	size_t len;
	int err;

	ruleset_init(rs);
	err = read_whole_file(path, RULES_MAX_FILE_SIZE, &text, &len);
	if (err) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot read rules file: %s",
			  read_error_text(err, ebuf, sizeof(ebuf)));
		return err == -EISDIR ? -EINVAL : err;
	}
	err = rules_parse_text(path, text, len, rs, d);
	free(text);
	return err;
}

size_t ruleset_count(const struct ruleset *rs, enum rule_stage stage, enum rule_dir dir)
{
	size_t i, n = 0;

	for (i = 0; i < rs->nrules; i++)
		if (rs->rules[i].stage == stage && rs->rules[i].dir == dir)
			n++;
	return n;
}

/* ---- warnings --------------------------------------------------------- */

#define FAM_4 1u
#define FAM_6 2u

static unsigned int fam_bit(int family)
{
	return family == 4 ? FAM_4 : family == 6 ? FAM_6 : FAM_4 | FAM_6;
}

static void warn_set_family(const struct ruleset *rs, const struct rule *r,
			    const unsigned int *set_fams, const struct rule_addr *a,
			    const char *field, unsigned int *fams, struct diags *d)
{
	unsigned int sf;

	if (a->kind != RULE_ADDR_SET || a->set < 0 || (size_t)a->set >= rs->nsets)
		return;
	sf = set_fams[a->set];
	if (!sf)
		return; /* an empty set is reported once, at the set */
	if (!(sf & *fams))
		diags_add(d, DIAG_WARNING, r->loc.file, r->loc.line, r->loc.col,
			  "set '%s' (%s) has no IPv%d prefix, so this rule never matches",
			  rs->sets[a->set].name, field, *fams == FAM_4 ? 4 : 6);
	else
		*fams &= sf;
}

void rules_check_warnings(const struct ruleset *rs, struct diags *d)
{
	const char *file = rs->nfiles ? rs->files[0] : NULL;
	unsigned int *set_fams;
	size_t i, j;
	int st, dir;

	for (st = RULE_STAGE_NACL; st <= RULE_STAGE_SG; st++) {
		const struct rule *first = NULL;

		if (!rs->stage_on[st])
			continue;
		/* Point at the stage's first rule: it is what turned the stage on. */
		for (i = 0; i < rs->nrules && !first; i++)
			if ((int)rs->rules[i].stage == st)
				first = &rs->rules[i];
		for (dir = RULE_DIR_IN; dir <= RULE_DIR_OUT; dir++)
			if (!ruleset_count(rs, st, dir))
				diags_add(
					d, DIAG_WARNING, first ? first->loc.file : file,
					first ? first->loc.line : 0, first ? 1 : 0,
					"%s %s has no rules: the stage is on, so all %s traffic is denied",
					rule_stage_name(st), rule_dir_name(dir),
					dir == RULE_DIR_IN ? "inbound" : "outbound");
	}

	set_fams = calloc(rs->nsets ? rs->nsets : 1, sizeof(*set_fams));
	if (!set_fams)
		return;
	for (i = 0; i < rs->nsets; i++) {
		const struct rule_set *s = &rs->sets[i];

		for (j = 0; j < s->n && set_fams[i] != (FAM_4 | FAM_6); j++)
			set_fams[i] |= fam_bit(s->prefixes[j].family);
		if (!s->n)
			diags_add(d, DIAG_WARNING, s->loc.file, s->loc.line, s->loc.col,
				  "set '%s' is empty: rules that use it match nothing", s->name);
	}

	for (i = 0; i < rs->nrules; i++) {
		const struct rule *r = &rs->rules[i];
		unsigned int fams = fam_bit(r->family);

		warn_set_family(rs, r, set_fams, &r->src, "src", &fams, d);
		warn_set_family(rs, r, set_fams, &r->dst, "dst", &fams, d);
		if (r->proto == 1 && r->family == 6)
			diags_add(
				d, DIAG_WARNING, r->loc.file, r->loc.line, r->loc.col,
				"icmp is IPv4's ICMP: with IPv6 addresses this rule never matches (use icmpv6)");
		else if (r->proto == 58 && r->family == 4)
			diags_add(
				d, DIAG_WARNING, r->loc.file, r->loc.line, r->loc.col,
				"icmpv6 is IPv6's ICMP: with IPv4 addresses this rule never matches (use icmp)");
	}
	free(set_fams);
}
