use super::*;
use imap_proto::types::{AttributeValue, Response};

/// The structure in one FETCH response line, parsed as the imap crate parses it.
fn parse(structure: &str) -> Vec<Attachment> {
    let line = format!("* 1 FETCH (UID 7 BODYSTRUCTURE {structure})\r\n");
    let (_, response) = imap_proto::parser::parse_response(line.as_bytes()).expect("parses");
    let Response::Fetch(_, attrs) = response else {
        panic!("not a FETCH")
    };
    let bs = attrs
        .iter()
        .find_map(|a| match a {
            AttributeValue::BodyStructure(bs) => Some(bs),
            _ => None,
        })
        .expect("a BODYSTRUCTURE");
    attachments(bs)
}

#[test]
fn an_invoice_pdf_is_listed_with_its_size_and_section_and_the_text_is_not() {
    let found = parse(
        r#"(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 120 3 NIL NIL NIL)("application" "pdf" ("name" "invoice.pdf") NIL NIL "base64" 78000 NIL ("attachment" ("filename" "invoice.pdf")) NIL) "mixed" ("boundary" "b1") NIL NIL)"#,
    );
    assert_eq!(
        found,
        [Attachment {
            name: "invoice.pdf".into(),
            mime: "application/pdf".into(),
            size: 57000,
            section: "2".into(),
            encoding: "base64".into()
        }]
    );
}

#[test]
fn inline_logos_and_pixels_are_not_listed_but_a_large_photo_is() {
    let found = parse(
        r#"((("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 900 20 NIL NIL NIL)("image" "png" ("name" "logo.png") "<logo@x>" NIL "base64" 4000 NIL ("inline" ("filename" "logo.png")) NIL)("image" "gif" ("name" "p.gif") NIL NIL "base64" 60 NIL ("inline" NIL) NIL) "related" ("boundary" "b2") NIL NIL)("image" "jpeg" ("name" "holiday.jpg") NIL NIL "base64" 780000 NIL ("inline" ("filename" "holiday.jpg")) NIL) "mixed" ("boundary" "b1") NIL NIL)"#,
    );
    let names: Vec<(&str, &str)> = found
        .iter()
        .map(|a| (a.name.as_str(), a.section.as_str()))
        .collect();
    assert_eq!(names, [("holiday.jpg", "2")]);
}

#[test]
fn encoded_and_hostile_names_are_decoded_and_cut_to_a_file_name() {
    let found = parse(&format!(
        r#"(("text" "plain" NIL NIL NIL "7bit" 1 1 NIL NIL NIL)("application" "octet-stream" NIL NIL NIL "base64" 100 NIL ("attachment" ("filename*" "UTF-8''Rechnung%20%E2%82%AC.pdf")) NIL)("application" "pdf" ("name" "=?UTF-8?B?w6RwZmVs?=.pdf") NIL NIL "base64" 100 NIL NIL NIL)("application" "x-sh" NIL NIL NIL "7bit" 10 NIL ("attachment" ("filename" {{19}}{crlf}../../etc/{rlo}passwd)) NIL)("application" "zip" NIL NIL NIL "base64" 10 NIL ("attachment" NIL) NIL) "mixed" ("boundary" "b1") NIL NIL)"#,
        rlo = '\u{202e}',
        crlf = "\r\n"
    ));
    let names: Vec<&str> = found.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["Rechnung €.pdf", "äpfel.pdf", "passwd", "attachment"]
    );
}

#[test]
fn a_single_part_attachment_is_section_1() {
    let found = parse(
        r#"("application" "pdf" ("name" "scan.pdf") NIL NIL "base64" 780 NIL ("attachment" NIL) NIL)"#,
    );
    assert_eq!(found[0].section, "1");
    assert_eq!(found[0].name, "scan.pdf");
}
