/* SPDX-License-Identifier: GPL-2.0 */
/*
 * import_aws.h - AWS CLI JSON (network ACLs, security groups and the
 * addresses they refer to) to moat rules text, for `moat import aws`.
 *
 * Pure: text in, text out, no BPF and no printing. The caller adds every
 * document it was given, then asks for the rules; errors and warnings go
 * to a diag list, errors naming the file and the JSON path of what could
 * not be expressed (e.g. `NetworkAcls[0].Entries[3].PortRange`).
 *
 * Documents are recognised by their top-level key:
 *   NetworkAcls          aws ec2 describe-network-acls
 *   SecurityGroups       aws ec2 describe-security-groups
 *   SecurityGroupRules   aws ec2 describe-security-group-rules
 *   NetworkInterfaces    aws ec2 describe-network-interfaces (members of the
 *                        security groups that rules refer to)
 *   Entries              aws ec2 get-managed-prefix-list-entries (members of
 *                        one prefix list; its id is given by the caller or
 *                        found in the file name, e.g. pl-0123abcd.json)
 * Members may also come from a text file, one `ID CIDR…` a line
 * (aws_import_add_members).
 */
#ifndef MOAT_IMPORT_AWS_H
#define MOAT_IMPORT_AWS_H

#include <stddef.h>
#include <stdio.h>

#include "diag.h"

struct aws_import;

struct aws_import_opts {
	const char *nacl_id;	   /* NULL: the only network ACL of the input */
	const char *const *sg_ids; /* NULL or empty: every security group */
	size_t n_sg_ids;
};

int aws_import_new(struct aws_import **out);
void aws_import_free(struct aws_import *imp);

/*
 * Add one JSON document. @name is used in messages (and, for prefix-list
 * entries without @pl_id, to find the prefix-list id). @pl_id (may be
 * NULL) names the prefix list whose entries the document holds; giving it
 * for another kind of document is an error. Returns 0, or -EINVAL with
 * the errors in @d (malformed JSON as FILE:LINE:COL).
 */
int aws_import_add_json(struct aws_import *imp, const char *name, const char *text, size_t len,
			const char *pl_id, struct diags *d);
/* The same from a file ("-": standard input). */
int aws_import_add_file(struct aws_import *imp, const char *path, const char *pl_id,
			struct diags *d);

/*
 * Add set members from text: one `ID CIDR [CIDR…]` a line, ID a security
 * group (sg-…) or a prefix list (pl-…), CIDR a prefix or a bare address;
 * `#` starts a comment. Returns 0, or -EINVAL with FILE:LINE:COL errors.
 */
int aws_import_add_members(struct aws_import *imp, const char *name, const char *text, size_t len,
			   struct diags *d);
int aws_import_add_members_file(struct aws_import *imp, const char *path, struct diags *d);

/*
 * Write the rules for the selected network ACL and security groups to
 * @out. Nothing is written when there are errors: returns -EINVAL with
 * them in @d. Warnings (e.g. a referenced set without members) go to @d
 * as well.
 */
int aws_import_write(struct aws_import *imp, const struct aws_import_opts *opts, FILE *out,
		     struct diags *d);
/* The same into a malloc'ed NUL-terminated string (*@text, *@len). */
int aws_import_to_text(struct aws_import *imp, const struct aws_import_opts *opts, char **text,
		       size_t *len, struct diags *d);

#endif
